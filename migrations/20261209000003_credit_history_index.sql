-- The dashboard's credit history lists an account's non-usage transactions (top-ups, grants,
-- refunds, disputes, expiries, reversals), newest first. A busy account has one usage
-- transaction per ledger-writer batch, millions over months, and they would all be walked past
-- on the way: this partial index holds only the rest. See bench/pages.
CREATE INDEX ledger_transactions_account_money_idx ON ledger_transactions (account_id, effective_at)
    WHERE kind <> 'usage';
