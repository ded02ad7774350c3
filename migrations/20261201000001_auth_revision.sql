-- Revocation that reaches every gateway instance within a second, whatever made the change
-- (the CLI, the management API, an operator's SQL). Any UPDATE or DELETE of api_keys or accounts
-- bumps one revision number and sends a notification on channel `infron_auth`; every instance
-- LISTENs (and also polls the revision, in case a notification was missed while its listening
-- connection was down) and drops its cached keys when the revision moves.

CREATE TABLE auth_revision (
    id        BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    revision  BIGINT NOT NULL DEFAULT 0
);
INSERT INTO auth_revision (id, revision) VALUES (true, 0);

CREATE FUNCTION infron_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE auth_revision SET revision = revision + 1;
    PERFORM pg_notify('infron_auth', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE TRIGGER api_keys_auth_changed AFTER UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION infron_auth_changed();
CREATE TRIGGER accounts_auth_changed AFTER UPDATE OR DELETE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION infron_auth_changed();
