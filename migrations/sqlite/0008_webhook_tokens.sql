-- One-time tokens of signed webhooks (Mailgun signs a timestamp and a token, not the body), each
-- with a digest of the request it first came with, kept while a request carrying it is still
-- fresh: the same token with another body is a replay and refused; with the same body it is the
-- provider's retry.
CREATE TABLE webhook_tokens (
    token   TEXT PRIMARY KEY,
    digest  TEXT NOT NULL,
    seen_at TEXT NOT NULL
);
CREATE INDEX webhook_tokens_seen ON webhook_tokens (seen_at);
