-- The balance check moves from a deferred per-row trigger (one query per entry at commit) to a
-- per-statement trigger over the inserted rows (one query per INSERT). Entries of a
-- transaction are always inserted by one statement, so every transaction is checked as a whole;
-- a statement that leaves any of its transactions unbalanced fails at once.

DROP TRIGGER ledger_entries_balanced ON ledger_entries;
DROP FUNCTION infron_ledger_balanced();

CREATE FUNCTION infron_ledger_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad UUID;
    total NUMERIC;
BEGIN
    SELECT e.transaction_id, sum(e.amount) INTO bad, total
    FROM ledger_entries e
    WHERE e.transaction_id IN (SELECT DISTINCT transaction_id FROM inserted_entries)
    GROUP BY e.transaction_id
    HAVING sum(e.amount) <> 0
    LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction % does not balance (sum %)', bad, total;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS inserted_entries
    FOR EACH STATEMENT EXECUTE FUNCTION infron_ledger_balanced();
