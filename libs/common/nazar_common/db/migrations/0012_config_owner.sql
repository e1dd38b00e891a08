-- Who owns a rule or channel: an opaque identifier a managing client sends
-- (the Kubernetes operator sends the uid of the resource a rule comes from).
-- A PUT or DELETE that names an owner other than the stored one is refused
-- (409), so that a resource never adopts, changes or deletes an object it
-- did not create; objects made by hand have none.
ALTER TABLE rules ADD COLUMN owner text;
ALTER TABLE channels ADD COLUMN owner text;

-- The rules scope: alert rules may be written (and everything read) with it,
-- nothing else; the Kubernetes operator's key needs no more.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check
    CHECK (scopes <@ ARRAY['ingest', 'read', 'admin', 'rules']::text[]);
