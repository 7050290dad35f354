-- Limits on the mail the web app sends on request (confirmations, links to preferences).
-- A confirmation asked for through a link we mailed (the preferences page: rejoining after an
-- unsubscribe, or a pending reader saving topics) has its own once-an-hour slot, apart from the
-- subscribe form's `last_confirmation_sent_at`.
ALTER TABLE subscribers ADD COLUMN last_reconfirmation_sent_at TIMESTAMPTZ;
-- The overall hourly cap counts transactional messages queued in the last hour.
CREATE INDEX deliveries_transactional_created ON deliveries (created_at) WHERE issue_id IS NULL;
