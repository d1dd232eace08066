-- The last verified event of each stream: the projector checks every event's hash and its link
-- to this head before applying it, and refuses (and records) one that does not verify.
CREATE TABLE stream_heads (
    stream_id      text PRIMARY KEY,
    stream_version integer NOT NULL,
    hash           text NOT NULL
);
