-- Read models built from rectrack.events. Every table can be rebuilt from the log.

-- Where each projection has got to in each partition; written in the same
-- transaction as the rows it covers, so a redelivered batch changes nothing.
CREATE TABLE projection_checkpoints (
    projection  text    NOT NULL,
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition)
);

-- Events that could not be projected: kept, reported, never silently dropped.
CREATE TABLE projection_errors (
    projection  text    NOT NULL,
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    "offset"    bigint  NOT NULL,
    reason      text    NOT NULL,
    raw         bytea,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition, "offset")
);

CREATE TABLE event_log (
    event_id       uuid PRIMARY KEY,
    stream_id      text NOT NULL,
    stream_version integer NOT NULL,
    type           text NOT NULL,
    effective_date date NOT NULL,
    recorded_at    timestamptz NOT NULL,
    command_id     uuid NOT NULL,
    actor_name     text NOT NULL,
    actor_team     text NOT NULL,
    actor_role     text NOT NULL,
    loaded_by      jsonb,
    data           jsonb NOT NULL,
    UNIQUE (stream_id, stream_version)
);

CREATE TABLE inspections (
    inspection_id   text PRIMARY KEY,
    recorded_at     timestamptz NOT NULL,
    title           text NOT NULL,
    inspectorate    text NOT NULL,
    published_on    date NOT NULL,
    inspection_type text,
    url             text,
    last_event_id   uuid NOT NULL
);

-- Current state of each recommendation.
CREATE TABLE recommendations (
    recommendation_id     text PRIMARY KEY,
    inspection_id         text NOT NULL,
    number                integer NOT NULL,
    kind                  text NOT NULL,
    text                  text NOT NULL,
    tracked               boolean NOT NULL,
    issued_on             date NOT NULL,
    issued_recorded_at    timestamptz NOT NULL,
    owner_team            text,
    owner_role            text,
    target_date           date,
    original_target_date  date,
    target_date_revisions integer NOT NULL DEFAULT 0,
    delivery_status       text,
    delay_reason          text,
    latest_position       text,
    closure_pending       boolean NOT NULL DEFAULT false,
    last_decision         text,
    decision_date         date,
    stream_version        integer NOT NULL,
    last_event_id         uuid NOT NULL,
    last_effective_date   date NOT NULL
);
CREATE INDEX recommendations_inspection ON recommendations (inspection_id, kind, number);

-- Each recommendation's reportable state after each of its events, as an interval of business
-- time [valid_from, valid_to) with its system time (recorded_at, and superseded_at: when the
-- next state was recorded). "As of D, as known at K" is one row per recommendation:
--   valid_from <= D AND recorded_at <= K
--   AND (valid_to IS NULL OR valid_to > D OR superseded_at > K)
CREATE TABLE recommendation_states (
    recommendation_id text NOT NULL,
    stream_version    integer NOT NULL,
    valid_from        date NOT NULL,
    valid_to          date,
    recorded_at       timestamptz NOT NULL,
    superseded_at     timestamptz,
    event_id          uuid NOT NULL,
    owner_team        text,
    target_date       date,
    delivery_status   text,
    latest_position   text,
    last_decision     text,
    decision_date     date,
    PRIMARY KEY (recommendation_id, stream_version)
);
CREATE INDEX recommendation_states_open ON recommendation_states (recommendation_id)
    WHERE valid_to IS NULL;

-- Running counts per inspection (current state), maintained incrementally.
CREATE TABLE inspection_counts (
    inspection_id text PRIMARY KEY,
    total         integer NOT NULL DEFAULT 0,
    closed        integer NOT NULL DEFAULT 0
);

CREATE TABLE committee_updates (
    committee     text NOT NULL,
    meeting_date  date NOT NULL,
    title         text NOT NULL,
    recorded_at   timestamptz NOT NULL,
    event_id      uuid NOT NULL,
    PRIMARY KEY (committee, meeting_date)
);
