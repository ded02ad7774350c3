-- Credit lots and key-limit usage are projected once per INSERT statement instead of once per
-- entry: the ledger writer inserts a whole batch's entries in one statement, so a batch of 500
-- usage postings walks each account's lots once and upserts each key's period once.
-- Same rules as before: money in (grant, topup, dispute_reinstated) opens a lot; an expiry
-- empties its own lot; every other debit consumes the account's oldest lots first; usage by a
-- key with a limit counts against the key's current period. Lots opened by a statement exist
-- before that statement's debits consume lots.

DROP TRIGGER ledger_entries_project ON ledger_entries;
DROP FUNCTION infron_project_entry();

CREATE FUNCTION infron_project_entries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    days  INTEGER;
    r     RECORD;
    lot   RECORD;
    need  NUMERIC;
    take  NUMERIC;
BEGIN
    -- Money in opens lots.
    SELECT credit_expiry_days INTO days FROM billing_settings;
    INSERT INTO credit_lots (id, account_id, transaction_id, source_kind, amount, remaining, expires_at, created_at)
    SELECT gen_random_uuid(), p.account_id, p.transaction_id, p.kind, -p.amount, -p.amount,
           CASE WHEN days IS NULL THEN NULL ELSE p.effective_at + make_interval(days => days) END,
           p.effective_at
    FROM (SELECT la.account_id, e.transaction_id, t.kind, t.metadata, t.effective_at, e.amount
           FROM inserted_entries e
           JOIN ledger_accounts la ON la.id = e.ledger_account_id AND la.kind = 'credits'
           JOIN ledger_transactions t ON t.id = e.transaction_id) p
    WHERE p.amount < 0 AND p.kind IN ('grant', 'topup', 'dispute_reinstated');

    -- Expiries empty their own lot.
    UPDATE credit_lots l SET remaining = l.remaining - least(l.remaining, x.amount)
    FROM (SELECT (p.metadata->>'lot_id')::uuid AS lot_id, sum(p.amount) AS amount
          FROM (SELECT la.account_id, e.transaction_id, t.kind, t.metadata, t.effective_at, e.amount
           FROM inserted_entries e
           JOIN ledger_accounts la ON la.id = e.ledger_account_id AND la.kind = 'credits'
           JOIN ledger_transactions t ON t.id = e.transaction_id) p
          WHERE p.amount > 0 AND p.kind = 'expiry' AND p.metadata ? 'lot_id'
          GROUP BY 1) x
    WHERE l.id = x.lot_id;

    -- Other debits consume each account's oldest lots, accounts in a fixed order.
    FOR r IN SELECT p.account_id, sum(p.amount) AS amount
             FROM (SELECT la.account_id, e.transaction_id, t.kind, t.metadata, t.effective_at, e.amount
           FROM inserted_entries e
           JOIN ledger_accounts la ON la.id = e.ledger_account_id AND la.kind = 'credits'
           JOIN ledger_transactions t ON t.id = e.transaction_id) p
             WHERE p.amount > 0 AND NOT (p.kind = 'expiry' AND p.metadata ? 'lot_id')
             GROUP BY p.account_id ORDER BY p.account_id LOOP
        need := r.amount;
        FOR lot IN SELECT id, remaining FROM credit_lots
                   WHERE account_id = r.account_id AND remaining > 0
                   ORDER BY created_at, id FOR UPDATE LOOP
            take := least(lot.remaining, need);
            UPDATE credit_lots SET remaining = remaining - take WHERE id = lot.id;
            need := need - take;
            EXIT WHEN need = 0;
        END LOOP;
    END LOOP;

    -- Usage by limited keys, per key and period.
    INSERT INTO api_key_usage AS u (api_key_id, period_start, used, version)
    SELECT k.id, infron_limit_period(k.limit_reset, x.effective_at), sum(x.amount), 1
    FROM (SELECT (p.metadata->>'api_key_id')::uuid AS key_id, p.effective_at, p.amount
          FROM (SELECT la.account_id, e.transaction_id, t.kind, t.metadata, t.effective_at, e.amount
           FROM inserted_entries e
           JOIN ledger_accounts la ON la.id = e.ledger_account_id AND la.kind = 'credits'
           JOIN ledger_transactions t ON t.id = e.transaction_id) p
          WHERE p.amount > 0 AND p.kind = 'usage'
            AND jsonb_typeof(p.metadata->'api_key_id') = 'string'
            AND (p.metadata->>'api_key_id') ~ '^[0-9a-fA-F-]{36}$') x
    JOIN api_keys k ON k.id = x.key_id AND k.credit_limit IS NOT NULL
    GROUP BY k.id, infron_limit_period(k.limit_reset, x.effective_at)
    ON CONFLICT (api_key_id, period_start)
    DO UPDATE SET used = u.used + EXCLUDED.used, version = u.version + 1;

    RETURN NULL;
END $$;

CREATE TRIGGER ledger_entries_project AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS inserted_entries
    FOR EACH STATEMENT EXECUTE FUNCTION infron_project_entries();
