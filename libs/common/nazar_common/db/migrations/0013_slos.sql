-- Service level objectives (/api/v1/slos): an objective over a good/total
-- pair of metrics or over host availability. burn_rate rules name them; the
-- analyzer reloads them with the rules (same notification). Columns as rules
-- (with 0012's owner), so the same configuration code stores them.
CREATE TABLE slos (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    spec       jsonb NOT NULL,
    source     text NOT NULL DEFAULT 'api',
    owner      text,
    version    integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER slos_notify AFTER INSERT OR UPDATE OR DELETE ON slos
    FOR EACH STATEMENT EXECUTE FUNCTION nazar_notify_config();
