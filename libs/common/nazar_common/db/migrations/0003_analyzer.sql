-- Analyzer: alerts, their transitions, per (rule, subject) evaluation state,
-- processed message ids and persisted detector models.

-- One row per incident of one rule on one subject (a series or a host),
-- from its first breach until it is resolved (or cancelled while pending).
CREATE TABLE alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fingerprint     text NOT NULL,
    rule_id         bigint NOT NULL,
    rule_name       text NOT NULL,
    kind            text NOT NULL,
    subject         text NOT NULL,
    host            text NOT NULL,
    series_id       bigint,
    metric          text,
    labels          jsonb NOT NULL DEFAULT '{}'::jsonb,
    annotations     jsonb NOT NULL DEFAULT '{}'::jsonb,
    channels        text[] NOT NULL DEFAULT '{}',
    severity        text NOT NULL,
    state           text NOT NULL
        CHECK (state IN ('pending', 'firing', 'nodata', 'resolved', 'normal')),
    seq             integer NOT NULL DEFAULT 0,
    started_at      timestamptz NOT NULL,
    fired_at        timestamptz,
    resolved_at     timestamptz,
    value           double precision,
    expected_low    double precision,
    expected_high   double precision,
    expected_centre double precision,
    score           double precision,
    explanation     text,
    contributors    text[] NOT NULL DEFAULT '{}',
    acked_at        timestamptz,
    acked_by        text,
    ack_comment     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- At most one open alert per rule and subject: the database itself refuses a
-- duplicate, whatever the replicas do.
CREATE UNIQUE INDEX alerts_open_idx ON alerts (rule_id, subject)
    WHERE state IN ('pending', 'firing', 'nodata');
CREATE INDEX alerts_started_idx ON alerts (started_at DESC);
CREATE INDEX alerts_state_idx ON alerts (state, started_at DESC);
CREATE INDEX alerts_host_idx ON alerts (host, started_at DESC);
CREATE INDEX alerts_rule_idx ON alerts (rule_name, started_at DESC);

-- Every state change of an alert; event_id is the AlertEventV1 id published
-- for it (deterministic: uuid5 of the alert id and seq).
CREATE TABLE alert_transitions (
    alert_id        bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    seq             integer NOT NULL,
    event_id        uuid NOT NULL UNIQUE,
    from_state      text NOT NULL,
    to_state        text NOT NULL,
    at              timestamptz NOT NULL,
    value           double precision,
    expected_low    double precision,
    expected_high   double precision,
    expected_centre double precision,
    score           double precision,
    explanation     text,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alert_id, seq)
);

-- Evaluation state of one rule on one subject ('s:<series id>' or
-- 'h:<host>'). Rows are locked (FOR UPDATE) by whoever evaluates them, so
-- replicas serialise per subject. Times are Unix seconds.
CREATE TABLE analyzer_state (
    rule_id      bigint NOT NULL,
    subject      text NOT NULL,
    host         text NOT NULL,
    series_id    bigint,
    state        text NOT NULL DEFAULT 'normal'
        CHECK (state IN ('normal', 'pending', 'firing', 'nodata')),
    since        double precision,
    fired_at     double precision,
    last_breach  double precision,
    last_ts      double precision,
    prior_state  text,
    alert_id     bigint,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, subject)
);
CREATE INDEX analyzer_state_last_ts_idx ON analyzer_state (last_ts);

-- Ids of sample batches already evaluated (recorded in the same transaction
-- as their effects: a redelivered batch changes nothing).
CREATE TABLE analyzer_processed (
    message_id   uuid PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX analyzer_processed_at_idx ON analyzer_processed (processed_at);

-- Detector snapshots (baseline statistics, isolation forests) so a restart
-- or another replica resumes instead of relearning; last_ts is the time of
-- the last point the snapshot has consumed.
CREATE TABLE analyzer_models (
    rule_id      bigint NOT NULL,
    series_id    bigint NOT NULL,
    rule_version integer NOT NULL,
    detector     text NOT NULL,
    interval_s   double precision NOT NULL,
    last_ts      double precision,
    points       bigint NOT NULL DEFAULT 0,
    state        bytea NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, series_id)
);
