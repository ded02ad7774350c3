-- Alerts (low balance, key spend at 80% / 100% of its limit) and auto top-up with a saved
-- card. See docs/alerts.md and docs/stripe.md.

-- One row per account that set alerts up.
CREATE TABLE alert_settings (
    account_id             UUID PRIMARY KEY REFERENCES accounts(id),
    -- Alert when the balance falls below this (USD); NULL: no low-balance alert.
    low_balance_threshold  NUMERIC(38,12) CHECK (low_balance_threshold IS NULL OR low_balance_threshold > 0),
    -- Alert when a limited key has spent 80% and 100% of its limit in its period.
    key_spend              BOOLEAN NOT NULL DEFAULT true,
    -- Email the account's owners and admins.
    email                  BOOLEAN NOT NULL DEFAULT true,
    -- POST a signed JSON event here (http or https); NULL: no webhook.
    webhook_url            TEXT CHECK (webhook_url IS NULL OR webhook_url ~ '^https?://'),
    -- The signing secret is derived from INFRON_KEY_SECRET and this random nonce (never stored
    -- itself); a new nonce is a new secret. NULL: no secret generated yet.
    webhook_secret_nonce   TEXT,
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A condition that held: one row per crossing. While `cleared_at` is NULL the alert is fired and
-- no other row for the same (account, kind, subject, threshold) can exist, so every instance's
-- scan fires it once; when the condition no longer holds the row is cleared and the next
-- crossing fires again.
CREATE TABLE alert_firings (
    id             UUID PRIMARY KEY,
    account_id     UUID NOT NULL REFERENCES accounts(id),
    -- 'low_balance' or 'key_spend'.
    kind           TEXT NOT NULL CHECK (kind IN ('low_balance', 'key_spend')),
    -- '' for the account's balance; the key's id for key spend.
    subject        TEXT NOT NULL DEFAULT '',
    -- Percent of a key's limit (80, 100); 0 for the balance.
    threshold_pct  INTEGER NOT NULL DEFAULT 0,
    -- Key spend: the limit period the crossing happened in.
    period_start   TIMESTAMPTZ,
    fired_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    cleared_at     TIMESTAMPTZ,
    payload        JSONB NOT NULL
);
CREATE UNIQUE INDEX alert_firings_open ON alert_firings (account_id, kind, subject, threshold_pct)
    WHERE cleared_at IS NULL;
CREATE INDEX alert_firings_account ON alert_firings (account_id, fired_at DESC);

-- Outbox of alert deliveries: one row per email recipient or webhook. Sent by a background
-- task, claimed with a lease so two instances never send the same row at once, retried with
-- backoff until `delivered_at` or `failed_at`.
CREATE TABLE alert_deliveries (
    id               UUID PRIMARY KEY,
    firing_id        UUID NOT NULL REFERENCES alert_firings(id),
    account_id       UUID NOT NULL REFERENCES accounts(id),
    channel          TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    -- An email address, or the webhook URL when the alert fired.
    target           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at     TIMESTAMPTZ,
    failed_at        TIMESTAMPTZ,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;

-- Auto top-up: buy `amount_cents` of credits with the saved card when the balance falls below
-- `threshold_cents`.
CREATE TABLE auto_topup (
    account_id         UUID PRIMARY KEY REFERENCES accounts(id),
    enabled            BOOLEAN NOT NULL DEFAULT false,
    threshold_cents    BIGINT NOT NULL DEFAULT 500 CHECK (threshold_cents > 0),
    amount_cents       BIGINT NOT NULL DEFAULT 2000 CHECK (amount_cents > 0),
    -- Cleared when a trigger fires; set again only once the balance is at or above the
    -- threshold, so one crossing buys once.
    armed              BOOLEAN NOT NULL DEFAULT true,
    -- Triggers so far; the next trigger's sequence number is this plus one.
    trigger_seq        BIGINT NOT NULL DEFAULT 0,
    stripe_customer    TEXT,
    payment_method     TEXT,
    card_brand         TEXT,
    card_last4         TEXT,
    -- Created time of the Stripe event that saved the card (an older replay never overwrites).
    card_saved_at      TIMESTAMPTZ,
    -- Why auto top-up stopped (a failed payment); cleared when the user enables it again.
    last_failure       TEXT,
    last_failure_at    TIMESTAMPTZ,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per trigger: the Stripe Idempotency-Key is derived from its id, so however often
-- the payment is attempted (retries, two instances) Stripe creates one PaymentIntent.
CREATE TABLE auto_topup_triggers (
    id               UUID PRIMARY KEY,
    account_id       UUID NOT NULL REFERENCES accounts(id),
    seq              BIGINT NOT NULL,
    credits_cents    BIGINT NOT NULL CHECK (credits_cents > 0),
    fee_cents        BIGINT NOT NULL CHECK (fee_cents >= 0),
    -- pending: PaymentIntent not created yet; created: waiting for Stripe's webhook;
    -- succeeded / failed: what the webhook (or Stripe's answer) said.
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'created', 'succeeded', 'failed')),
    payment_intent   TEXT UNIQUE,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    error            TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (account_id, seq)
);
CREATE INDEX auto_topup_triggers_pending ON auto_topup_triggers (next_attempt_at)
    WHERE status = 'pending';
