-- Deliveries: a kind per transactional email ('preferences' besides 'confirm'), the status
-- 'unknown' (no reply after the message data, resends used up), how many attempts ended with an
-- unknown outcome, and who holds a lease (host, process id, process start). SQLite cannot change
-- a CHECK constraint in place, so the table is rebuilt; no other table references it.
CREATE TABLE deliveries_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL CHECK (kind IN ('digest','confirm','preferences')),
    issue_id         INTEGER REFERENCES issues (id),
    subscriber_id    INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    email            TEXT NOT NULL,
    topic            TEXT,
    message_id       TEXT NOT NULL UNIQUE,
    payload          BLOB,
    status           TEXT NOT NULL CHECK (status IN ('queued','sending','sent','deferred','failed','skipped','unknown')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    unknown_outcomes INTEGER NOT NULL DEFAULT 0,
    not_before       TEXT NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    lease_host       TEXT,
    lease_pid        INTEGER,
    lease_process_start TEXT,
    last_reply       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    sent_at          TEXT,
    UNIQUE (issue_id, subscriber_id)
);

INSERT INTO deliveries_new (id, kind, issue_id, subscriber_id, email, topic, message_id, payload, status,
    attempts, not_before, next_attempt_at, lease_owner, lease_expires_at, last_reply, created_at,
    updated_at, sent_at)
SELECT id, kind, issue_id, subscriber_id, email, topic, message_id, payload, status,
    attempts, not_before, next_attempt_at, lease_owner, lease_expires_at, last_reply, created_at,
    updated_at, sent_at
FROM deliveries;

DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_issue ON deliveries (issue_id, status);
-- Rebuilding the table drops its indexes: 0002's index for the hourly cap on web mail comes back.
CREATE INDEX deliveries_transactional_created ON deliveries (created_at) WHERE issue_id IS NULL;
