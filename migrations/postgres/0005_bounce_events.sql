-- Inbound reports about mail we sent (bounces, complaints, auto-replies, delivery reports), one
-- row per message, idempotent on its Message-ID (or a hash of the message when it has none).
-- `effect` is what the policy counted it as (hard, soft, complaint, none); `status_change` the
-- subscriber status it caused, if any.
CREATE TABLE bounce_events (
    id            BIGSERIAL PRIMARY KEY,
    message_key   TEXT NOT NULL UNIQUE,
    source        TEXT NOT NULL CHECK (source IN ('pipe','maildir','mbox','imap','webhook')),
    kind          TEXT NOT NULL,
    effect        TEXT NOT NULL CHECK (effect IN ('hard','soft','complaint','none')),
    email         TEXT,
    status        TEXT,
    reason        TEXT,
    parsed        TEXT NOT NULL,
    raw           BYTEA NOT NULL,
    delivery_id   BIGINT REFERENCES deliveries (id) ON DELETE SET NULL,
    subscriber_id BIGINT REFERENCES subscribers (id) ON DELETE SET NULL,
    status_change TEXT,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX bounce_events_subscriber ON bounce_events (subscriber_id, effect, created_at);
