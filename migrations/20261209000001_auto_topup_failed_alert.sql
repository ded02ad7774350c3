-- A failed auto top-up payment is an alert too: the account's owners and admins get an email
-- (and its webhook an `auto_topup.failed` event) through the same outbox. It is an event, not a
-- condition, so its firing is written already cleared. See docs/alerts.md.
ALTER TABLE alert_firings DROP CONSTRAINT alert_firings_kind_check;
ALTER TABLE alert_firings ADD CONSTRAINT alert_firings_kind_check
    CHECK (kind IN ('low_balance', 'key_spend', 'auto_topup_failed'));
