-- Core tables shared by both storage backends.

CREATE TABLE api_keys (
    key_id      text PRIMARY KEY,
    secret_hash text NOT NULL,
    name        text NOT NULL DEFAULT '',
    scopes      text[] NOT NULL CHECK (scopes <@ ARRAY['ingest', 'read', 'admin']::text[]),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    last_used_at timestamptz
);

-- One row per distinct (metric, host, labels). Labels are a flat JSON object
-- of strings; equality of jsonb is key-order independent.
CREATE TABLE series (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    metric     text NOT NULL,
    host       text NOT NULL,
    labels     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (metric, host, labels)
);
CREATE INDEX series_host_idx ON series (host, metric);
CREATE INDEX series_metric_idx ON series (metric);
CREATE INDEX series_labels_idx ON series USING gin (labels jsonb_path_ops);

CREATE TABLE hosts (
    host        text PRIMARY KEY,
    labels      jsonb NOT NULL DEFAULT '{}'::jsonb,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL,
    last_sample timestamptz NOT NULL
);

-- Idempotency keys of accepted ingest requests and replayed batches.
CREATE TABLE ingest_requests (
    key         text PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_requests_received_idx ON ingest_requests (received_at);

-- Transactional outbox: batches committed with their samples, published to
-- RabbitMQ by the relay, then deleted.
CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    exchange    text NOT NULL,
    routing_key text NOT NULL,
    message_id  uuid NOT NULL,
    headers     jsonb NOT NULL DEFAULT '{}'::jsonb,
    body        bytea NOT NULL
);

CREATE TABLE rules (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    spec       jsonb NOT NULL,
    source     text NOT NULL DEFAULT 'api',
    version    integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE channels (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    spec       jsonb NOT NULL,
    source     text NOT NULL DEFAULT 'api',
    version    integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Listeners (analyzer, notifier) reload configuration on this notification.
CREATE FUNCTION nazar_notify_config() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('nazar_config', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER rules_notify AFTER INSERT OR UPDATE OR DELETE ON rules
    FOR EACH STATEMENT EXECUTE FUNCTION nazar_notify_config();
CREATE TRIGGER channels_notify AFTER INSERT OR UPDATE OR DELETE ON channels
    FOR EACH STATEMENT EXECUTE FUNCTION nazar_notify_config();
