-- Notifier state: event dedupe, alert groups, notifications and every
-- delivery attempt, silences and recurring mute windows.

-- Idempotency: one row per AlertEventV1 id the notifier has applied. The row
-- is written in the transaction that changes the group state, so a
-- redelivered event changes nothing.
CREATE TABLE notifier_events (
    event_id    uuid PRIMARY KEY,
    alert_id    bigint NOT NULL,
    fingerprint text NOT NULL,
    rule_name   text NOT NULL,
    state       text NOT NULL,
    channels    text[] NOT NULL DEFAULT '{}',
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifier_events_received_idx ON notifier_events (received_at);

-- One aggregation group per channel and group-by values.
CREATE TABLE notifier_groups (
    channel       text NOT NULL,
    group_key     text NOT NULL,
    group_labels  jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    next_flush_at timestamptz,
    last_flush_at timestamptz,
    last_sent_at  timestamptz,
    PRIMARY KEY (channel, group_key)
);
CREATE INDEX notifier_groups_due_idx ON notifier_groups (next_flush_at)
    WHERE next_flush_at IS NOT NULL;

-- The latest known state of each alert in each channel's group, and what
-- was last notified about it.
CREATE TABLE notifier_alerts (
    channel          text NOT NULL,
    fingerprint      text NOT NULL,
    group_key        text NOT NULL,
    event            jsonb NOT NULL,
    state            text NOT NULL,
    event_at         timestamptz NOT NULL,
    transitions      timestamptz[] NOT NULL DEFAULT '{}',
    flapping         boolean NOT NULL DEFAULT false,
    notified_state   text,
    notified_at      timestamptz,
    notified_by      bigint,
    silenced_state   text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, fingerprint)
);
CREATE INDEX notifier_alerts_group_idx ON notifier_alerts (channel, group_key);

-- One row per notification (a message to one channel). dedupe_key is unique:
-- the same transition of the same alerts is never queued twice.
CREATE TABLE notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key      text NOT NULL UNIQUE,
    channel         text NOT NULL,
    channel_type    text NOT NULL,
    group_key       text NOT NULL,
    kind            text NOT NULL
        CHECK (kind IN ('firing', 'resolved', 'flapping', 'repeat', 'test')),
    status          text NOT NULL
        CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'silenced')),
    payload         jsonb NOT NULL,
    prior_states    jsonb NOT NULL DEFAULT '{}'::jsonb,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    deadline        timestamptz NOT NULL,
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    finished_at     timestamptz
);
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at)
    WHERE status IN ('pending', 'sending');
CREATE INDEX notifications_channel_idx ON notifications (channel, created_at DESC);
CREATE INDEX notifications_failed_idx ON notifications (finished_at DESC) WHERE status = 'failed';

-- Every delivery attempt (and every silenced notification).
CREATE TABLE deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id bigint REFERENCES notifications (id) ON DELETE CASCADE,
    channel         text NOT NULL,
    channel_type    text NOT NULL,
    endpoint        text NOT NULL DEFAULT '',
    attempt         integer NOT NULL,
    status          text NOT NULL
        CHECK (status IN ('sent', 'retry', 'failed', 'short_circuited', 'silenced')),
    http_status     integer,
    error           text,
    duration_ms     double precision,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_at_idx ON deliveries (at DESC);
CREATE INDEX deliveries_channel_idx ON deliveries (channel, at DESC);
CREATE INDEX deliveries_notification_idx ON deliveries (notification_id);

CREATE TABLE silences (
    id         uuid PRIMARY KEY,
    matchers   jsonb NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    created_by text NOT NULL,
    comment    text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX silences_ends_idx ON silences (ends_at);

-- Recurring maintenance windows: days of week + local time range + zone.
CREATE TABLE mute_windows (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    spec       jsonb NOT NULL,
    created_by text NOT NULL DEFAULT '',
    version    integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER silences_notify AFTER INSERT OR UPDATE OR DELETE ON silences
    FOR EACH STATEMENT EXECUTE FUNCTION nazar_notify_config();
CREATE TRIGGER mute_windows_notify AFTER INSERT OR UPDATE OR DELETE ON mute_windows
    FOR EACH STATEMENT EXECUTE FUNCTION nazar_notify_config();
