-- The events the decider sealed (events/seals.py): every hash listed by a seal whose signature
-- verified with a trusted decider key, with the seal's place in the log. An event is projected
-- only when its hash is here (or in a seal of its own batch) from a seal on its partition at or
-- before its offset, so events of later batches, after a restart or in a replay, find their
-- seal. Rebuilt from the log like every read model: a replay writes the same rows. The hash is
-- kept as its 32 bytes: a bytea key costs PostgreSQL about half of a 64-character text one.
-- One row per hash and partition: a genuine seal copied onto another partition cannot take
-- the place of the genuine one, whichever partition a projector reads first.
CREATE TABLE sealed_events (
    hash      bytea   NOT NULL,
    partition integer NOT NULL,
    key_id    text    NOT NULL,
    "offset"  bigint  NOT NULL,
    PRIMARY KEY (hash, partition)
);
