-- Events the decider sealed (events/seals.py) that the projector has not met yet: each hash a
-- seal lists (one whose signature verified with a trusted decider key) and whose event did not
-- come in the seal's own batch, with the seal's place in the log. An event is projected only
-- when a seal on its partition at or before its offset lists it: one of its own batch, or one
-- here, so events of later batches, after a restart or in a replay, find their seal. Which
-- hashes are here depends on where batches were cut (projections/sealed_events.py): it is not
-- compared by checksum. The hash is kept as its 32 bytes (a bytea key costs PostgreSQL about
-- half of a 64-character text one). A seal signs its partition, so a hash is sealed on one
-- partition only: the hash is the key.
CREATE TABLE sealed_events (
    hash      bytea   PRIMARY KEY,
    key_id    text    NOT NULL,
    partition integer NOT NULL,
    "offset"  bigint  NOT NULL
);
