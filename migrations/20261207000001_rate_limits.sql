-- Rate limits: requests and tokens per minute, per key and per account (all of its keys
-- together), plus the account's defaults for keys that set none. NULL means no limit. Every
-- change bumps the auth revision (the triggers on both tables), so every instance sees it
-- within a second.
ALTER TABLE api_keys
    ADD COLUMN rate_limit_rpm integer CHECK (rate_limit_rpm > 0),
    ADD COLUMN rate_limit_tpm bigint CHECK (rate_limit_tpm > 0);

ALTER TABLE accounts
    ADD COLUMN rate_limit_rpm integer CHECK (rate_limit_rpm > 0),
    ADD COLUMN rate_limit_tpm bigint CHECK (rate_limit_tpm > 0),
    ADD COLUMN default_key_rpm integer CHECK (default_key_rpm > 0),
    ADD COLUMN default_key_tpm bigint CHECK (default_key_tpm > 0);
