-- Deliveries: a kind per transactional email ('preferences' besides 'confirm'), the status
-- 'unknown' (no reply after the message data, resends used up), how many attempts ended with an
-- unknown outcome, and who holds a lease (host, process id, process start).
ALTER TABLE deliveries DROP CONSTRAINT deliveries_kind_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_kind_check
    CHECK (kind IN ('digest','confirm','preferences'));
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('queued','sending','sent','deferred','failed','skipped','unknown'));
ALTER TABLE deliveries ADD COLUMN unknown_outcomes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN lease_host TEXT;
ALTER TABLE deliveries ADD COLUMN lease_pid BIGINT;
ALTER TABLE deliveries ADD COLUMN lease_process_start TEXT;
