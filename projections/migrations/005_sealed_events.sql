-- The events the decider sealed (events/seals.py): every hash listed by a seal whose signature
-- verified with a trusted decider key, with the seal's place in the log. An event is projected
-- only when its hash is here (or in a seal of its own batch) from a seal on its partition at or
-- before its offset, so events of later batches, after a restart or in a replay, find their
-- seal. Rebuilt from the log like every read model: a replay writes the same rows. The hash is
-- kept as its 32 bytes: a bytea key costs PostgreSQL about half of a 64-character text one.
-- A seal signs its partition, so a hash is sealed on one partition only: the hash is the key.
CREATE TABLE sealed_events (
    hash      bytea   PRIMARY KEY,
    key_id    text    NOT NULL,
    partition integer NOT NULL,
    "offset"  bigint  NOT NULL
);
