-- Stripe top-ups: Checkout Sessions we created, the webhook events we processed, and what
-- Stripe told us about refunds and disputes. Amounts here are Stripe's integer cents (USD);
-- the ledger holds the same money as NUMERIC dollars.

-- One row per Checkout Session created by POST /api/v1/credits/checkout.
CREATE TABLE topup_sessions (
    -- Stripe's Checkout Session id (cs_...).
    id               TEXT PRIMARY KEY,
    account_id       UUID NOT NULL REFERENCES accounts(id),
    credits_cents    BIGINT NOT NULL CHECK (credits_cents > 0),
    fee_cents        BIGINT NOT NULL CHECK (fee_cents >= 0),
    total_cents      BIGINT NOT NULL,
    currency         TEXT NOT NULL DEFAULT 'usd',
    -- open: waiting for payment; paid: Stripe confirmed the money (credited once, see
    -- credited_at and the ledger transaction 'topup:<id>'); failed: async payment failed;
    -- expired: the session expired unpaid.
    status           TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid', 'failed', 'expired')),
    payment_intent   TEXT,
    -- Cents of this payment taken back so far by refunds and disputes (net of reinstatements).
    -- Reversals take the credits first, then the fee (docs/stripe.md).
    reversed_cents   BIGINT NOT NULL DEFAULT 0 CHECK (reversed_cents >= 0),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    paid_at          TIMESTAMPTZ,
    credited_at      TIMESTAMPTZ,
    CHECK (total_cents = credits_cents + fee_cents)
);
CREATE UNIQUE INDEX topup_sessions_payment_intent ON topup_sessions (payment_intent)
    WHERE payment_intent IS NOT NULL;
CREATE INDEX topup_sessions_account_idx ON topup_sessions (account_id, created_at);

-- Every webhook event processed, written in the same database transaction as its effects,
-- so a replayed or duplicated delivery is recognised and changes nothing.
CREATE TABLE stripe_events (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    object_id    TEXT,
    livemode     BOOLEAN NOT NULL DEFAULT false,
    -- The event's own `created` time at Stripe.
    created_at   TIMESTAMPTZ NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stripe_events_object_idx ON stripe_events (object_id);

-- Refund state of a charge as last reported by Stripe. `amount_refunded` is cumulative at
-- Stripe; refunded_cents keeps the highest figure seen (events can arrive out of order) and
-- applied_cents what has been posted to the ledger. A charge whose payment is not credited
-- yet (refund seen before the checkout completion) waits here until it is.
CREATE TABLE stripe_charges (
    id              TEXT PRIMARY KEY,
    payment_intent  TEXT,
    amount_cents    BIGINT NOT NULL CHECK (amount_cents >= 0),
    refunded_cents  BIGINT NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0),
    applied_cents   BIGINT NOT NULL DEFAULT 0 CHECK (applied_cents >= 0),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stripe_charges_payment_intent_idx ON stripe_charges (payment_intent);

-- Disputes whose funds were withdrawn and possibly reinstated; *_applied says what has been
-- posted to the ledger.
CREATE TABLE stripe_disputes (
    id                  TEXT PRIMARY KEY,
    charge_id           TEXT NOT NULL,
    payment_intent      TEXT,
    amount_cents        BIGINT NOT NULL CHECK (amount_cents >= 0),
    withdrawn           BOOLEAN NOT NULL DEFAULT false,
    reinstated          BOOLEAN NOT NULL DEFAULT false,
    withdrawn_applied   BOOLEAN NOT NULL DEFAULT false,
    reinstated_applied  BOOLEAN NOT NULL DEFAULT false,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stripe_disputes_payment_intent_idx ON stripe_disputes (payment_intent);
