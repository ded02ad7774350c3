-- Tenants serve themselves: users, memberships with roles, invitations, single-use email tokens,
-- operators, management keys, frozen accounts, account settings and the audit log.
-- The rules (who may do what) live in crates/accounts; these tables only hold the facts.

-- People who sign in to the dashboard. Emails are stored lower-cased (the accounts crate
-- normalizes them), so the unique index is a plain one.
CREATE TABLE users (
    id                   UUID PRIMARY KEY,
    email                TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    -- argon2id in PHC format; never the password.
    password_hash        TEXT NOT NULL,
    email_verified_at    TIMESTAMPTZ,
    password_changed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The people running the platform. Deliberately not users: an operator session can never be
-- mistaken for a tenant's, and a tenant's role can never reach the operator API.
CREATE TABLE operators (
    id             UUID PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    password_hash  TEXT NOT NULL,
    disabled       BOOLEAN NOT NULL DEFAULT false,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE accounts
    -- A frozen account's keys are refused on every instance (the accounts trigger of the
    -- auth_revision migration flushes every key cache when this changes).
    ADD COLUMN frozen_at               TIMESTAMPTZ,
    ADD COLUMN frozen_reason           TEXT,
    -- Applied to keys created without an explicit limit.
    ADD COLUMN default_key_limit       NUMERIC(38,12) CHECK (default_key_limit IS NULL OR default_key_limit >= 0),
    ADD COLUMN default_key_limit_reset TEXT CHECK (default_key_limit_reset IN ('daily', 'weekly', 'monthly')),
    -- The user whose personal account this is (created with them at sign-up), if any.
    ADD COLUMN personal_of             UUID REFERENCES users(id);

CREATE TABLE memberships (
    account_id  UUID NOT NULL REFERENCES accounts(id),
    user_id     UUID NOT NULL REFERENCES users(id),
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'billing')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);
-- Exactly one owner per account is kept by the transfer and removal rules; at most one is
-- enforced here.
CREATE UNIQUE INDEX memberships_one_owner ON memberships (account_id) WHERE role = 'owner';

-- Management keys share api_keys with inference keys: one secret format, one keyed-hash index,
-- one cache and one revocation trigger. `kind` says what a key may do.
ALTER TABLE api_keys
    ADD COLUMN kind        TEXT NOT NULL DEFAULT 'inference'
                           CHECK (kind IN ('inference', 'management', 'management_read')),
    ADD COLUMN created_by  UUID REFERENCES users(id),
    ADD COLUMN updated_at  TIMESTAMPTZ,
    -- Deleted keys stay (disabled) so request logs and activity keep their name; they are
    -- gone from every listing and lookup.
    ADD COLUMN deleted_at  TIMESTAMPTZ;
CREATE INDEX api_keys_creator_idx ON api_keys (account_id, created_by);

CREATE TABLE invitations (
    id           UUID PRIMARY KEY,
    account_id   UUID NOT NULL REFERENCES accounts(id),
    email        TEXT NOT NULL CHECK (email = lower(email)),
    role         TEXT NOT NULL CHECK (role IN ('admin', 'member', 'billing')),
    -- SHA-256 of the emailed token; the token itself is never stored.
    token_hash   BYTEA NOT NULL UNIQUE,
    invited_by   UUID REFERENCES users(id),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    accepted_at  TIMESTAMPTZ,
    accepted_by  UUID REFERENCES users(id),
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX invitations_account_idx ON invitations (account_id, created_at);

-- Single-use tokens sent by email: address verification and password reset.
CREATE TABLE user_tokens (
    token_hash  BYTEA PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users(id),
    purpose     TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX user_tokens_user_idx ON user_tokens (user_id, purpose);

-- Every change to keys, members, roles, settings, credits and freezes: who, what, when, from
-- where. Append-only like the ledger.
CREATE TABLE audit_log (
    id             UUID PRIMARY KEY,
    at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The tenant concerned; NULL for platform-level events (an operator created).
    account_id     UUID REFERENCES accounts(id),
    actor_kind     TEXT NOT NULL CHECK (actor_kind IN ('user', 'api_key', 'operator', 'cli', 'system')),
    actor_user_id  UUID,
    actor_key_id   UUID,
    actor_label    TEXT NOT NULL DEFAULT '',
    action         TEXT NOT NULL,
    target_kind    TEXT NOT NULL DEFAULT '',
    target_id      TEXT NOT NULL DEFAULT '',
    details        JSONB NOT NULL DEFAULT '{}',
    ip             TEXT,
    user_agent     TEXT
);
CREATE INDEX audit_log_account_idx ON audit_log (account_id, at, id);
CREATE INDEX audit_log_at_idx ON audit_log (at, id);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION infron_ledger_append_only();

-- Rollup lookups of one key's days (key lists show usage per key).
CREATE INDEX usage_daily_key_idx ON finance.usage_daily (api_key_id, day);
