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
    stream_version        integer NOT NULL,
    last_event_id         uuid NOT NULL,
    last_effective_date   date NOT NULL
);
CREATE INDEX recommendations_inspection ON recommendations (inspection_id, kind, number);

-- Every change of a reportable attribute, with its business and system time,
-- so reports can be computed as of any date and as known at any moment.
CREATE TABLE recommendation_history (
    recommendation_id text NOT NULL,
    stream_version    integer NOT NULL,
    attribute         text NOT NULL,
    value             text,
    effective_date    date NOT NULL,
    recorded_at       timestamptz NOT NULL,
    event_id          uuid NOT NULL,
    PRIMARY KEY (recommendation_id, attribute, stream_version)
);

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
