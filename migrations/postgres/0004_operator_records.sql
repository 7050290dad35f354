-- The last run of a job that did the job, kept when a later slot is skipped or fails
-- (`tidings status`), and what fetch saw but did not store, with the reason (`tidings explain`).
ALTER TABLE job_runs ADD COLUMN last_completed_at TIMESTAMPTZ;
ALTER TABLE job_runs ADD COLUMN last_completed_result TEXT;
UPDATE job_runs SET last_completed_at = last_run_at, last_completed_result = last_result
WHERE last_run_at IS NOT NULL AND (last_result LIKE 'ok%' OR last_result LIKE 'tidings run%');

CREATE TABLE dropped_items (
    canonical_url TEXT PRIMARY KEY,
    source_name   TEXT NOT NULL,
    title         TEXT NOT NULL,
    reason        TEXT NOT NULL,
    seen_at       TIMESTAMPTZ NOT NULL
);
