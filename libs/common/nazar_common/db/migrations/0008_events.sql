-- Events: deploys, configuration changes, incidents. Charts draw them as
-- markers; the analyzer annotates or holds alerts after deploys. An event
-- touches hosts by name (hosts), by labels (selector: every label equal), or
-- both (either matches); with neither it touches every host.
CREATE TABLE events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL,
    title       text NOT NULL,
    service     text,
    version     text,
    hosts       text[] NOT NULL DEFAULT '{}',
    selector    jsonb NOT NULL DEFAULT '{}'::jsonb,
    start_time  timestamptz NOT NULL,
    end_time    timestamptz,
    link        text,
    labels      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (end_time IS NULL OR end_time >= start_time)
);
CREATE INDEX events_start_idx ON events (start_time DESC, id DESC);
CREATE INDEX events_hosts_idx ON events USING gin (hosts);
-- Retention deletes by the time an event ended (or started).
CREATE INDEX events_last_idx ON events ((coalesce(end_time, start_time)));

-- The analyzer keeps recent events in memory and reloads them on this
-- notification (a channel of its own: rule and channel listeners are not woken).
CREATE FUNCTION nazar_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('nazar_events', TG_OP);
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT OR UPDATE OR DELETE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION nazar_notify_events();

-- The time from which a detector snapshot has learnt: a detector re-learns
-- from a deploy on (rules with deploys.hold_for); NULL when unknown.
ALTER TABLE analyzer_models ADD COLUMN origin double precision;
