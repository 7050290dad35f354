-- tidings schema for SQLite. Times are RFC 3339 text in UTC written by the application.
CREATE TABLE subscribers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    email           TEXT NOT NULL,
    email_key       TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL CHECK (status IN ('pending','confirmed','unsubscribed','bounced','complained')),
    timezone        TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    confirmed_at    TEXT,
    unsubscribed_at TEXT,
    last_confirmation_sent_at TEXT
);
CREATE INDEX subscribers_status ON subscribers (status);

CREATE TABLE subscriptions (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    topic         TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, topic)
);
CREATE INDEX subscriptions_topic ON subscriptions (topic);

CREATE TABLE consents (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id   INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    source          TEXT NOT NULL,
    wording_version TEXT NOT NULL,
    asked_at        TEXT NOT NULL,
    confirmed_at    TEXT,
    ip              TEXT,
    user_agent      TEXT
);
CREATE INDEX consents_subscriber ON consents (subscriber_id);

CREATE TABLE suppressions (
    email_hash TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE articles (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    canonical_url TEXT NOT NULL UNIQUE,
    url           TEXT NOT NULL,
    title         TEXT NOT NULL,
    domain        TEXT NOT NULL,
    published_at  TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX articles_published ON articles (published_at);

CREATE TABLE article_sources (
    article_id     INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    source_name    TEXT NOT NULL,
    source_kind    TEXT NOT NULL,
    external_id    TEXT NOT NULL,
    points         INTEGER,
    comments       INTEGER,
    discussion_url TEXT,
    text           TEXT,
    tags           TEXT NOT NULL DEFAULT '[]',
    published_at   TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (article_id, source_name)
);

CREATE TABLE pages (
    article_id  INTEGER PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    description TEXT,
    text        TEXT,
    error       TEXT,
    fetched_at  TEXT NOT NULL
);

CREATE TABLE summaries (
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    model      TEXT NOT NULL,
    summary    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (article_id, model)
);

CREATE TABLE feed_state (
    source_name   TEXT PRIMARY KEY,
    etag          TEXT,
    last_modified TEXT,
    updated_at    TEXT NOT NULL
);

CREATE TABLE issues (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    topic        TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end   TEXT NOT NULL,
    compiled_at  TEXT NOT NULL,
    article_count INTEGER NOT NULL,
    content      TEXT NOT NULL,
    UNIQUE (topic, window_end)
);

CREATE TABLE issue_articles (
    issue_id   INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    article_id INTEGER NOT NULL REFERENCES articles (id),
    position   INTEGER NOT NULL,
    PRIMARY KEY (issue_id, article_id)
);
CREATE INDEX issue_articles_article ON issue_articles (article_id);

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL CHECK (kind IN ('digest','confirm')),
    issue_id         INTEGER REFERENCES issues (id),
    subscriber_id    INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    email            TEXT NOT NULL,
    topic            TEXT,
    message_id       TEXT NOT NULL UNIQUE,
    payload          BLOB,
    status           TEXT NOT NULL CHECK (status IN ('queued','sending','sent','deferred','failed','skipped')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    not_before       TEXT NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    last_reply       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    sent_at          TEXT,
    UNIQUE (issue_id, subscriber_id)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_issue ON deliveries (issue_id, status);

CREATE TABLE job_runs (
    job         TEXT PRIMARY KEY,
    last_run_at TEXT,
    last_result TEXT,
    next_run_at TEXT,
    updated_at  TEXT NOT NULL
);

CREATE TABLE locks (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
