-- An event that continues its stream's verified chain but cannot be applied (unreadable data,
-- a value PostgreSQL refuses) is recorded here AND moves its stream's head past it, so the
-- stream's later events still project. These columns say which stream it belongs to, when it
-- happened (for reports as of a date and as known at a moment), and whether the head moved
-- (in_chain) or the event was refused as not part of its chain (forged or altered).
-- Rows written before this migration keep in_chain = false: no head moved past them.
ALTER TABLE projection_errors
    ADD COLUMN stream_id         text,
    ADD COLUMN stream_version    integer,
    ADD COLUMN effective_date    date,
    ADD COLUMN event_recorded_at timestamptz,
    ADD COLUMN in_chain          boolean NOT NULL DEFAULT false;

CREATE INDEX projection_errors_in_chain ON projection_errors (projection, stream_id)
    WHERE in_chain;
