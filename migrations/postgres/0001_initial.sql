-- tidings schema for PostgreSQL. Times are TIMESTAMPTZ written by the application.
CREATE TABLE subscribers (
    id              BIGSERIAL PRIMARY KEY,
    email           TEXT NOT NULL,
    email_key       TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL CHECK (status IN ('pending','confirmed','unsubscribed','bounced','complained')),
    timezone        TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    confirmed_at    TIMESTAMPTZ,
    unsubscribed_at TIMESTAMPTZ,
    last_confirmation_sent_at TIMESTAMPTZ
);
CREATE INDEX subscribers_status ON subscribers (status);

CREATE TABLE subscriptions (
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    topic         TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (subscriber_id, topic)
);
CREATE INDEX subscriptions_topic ON subscriptions (topic);

CREATE TABLE consents (
    id              BIGSERIAL PRIMARY KEY,
    subscriber_id   BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    source          TEXT NOT NULL,
    wording_version TEXT NOT NULL,
    asked_at        TIMESTAMPTZ NOT NULL,
    confirmed_at    TIMESTAMPTZ,
    ip              TEXT,
    user_agent      TEXT
);
CREATE INDEX consents_subscriber ON consents (subscriber_id);

CREATE TABLE suppressions (
    email_hash TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE articles (
    id            BIGSERIAL PRIMARY KEY,
    canonical_url TEXT NOT NULL UNIQUE,
    url           TEXT NOT NULL,
    title         TEXT NOT NULL,
    domain        TEXT NOT NULL,
    published_at  TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX articles_published ON articles (published_at);

CREATE TABLE article_sources (
    article_id     BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    source_name    TEXT NOT NULL,
    source_kind    TEXT NOT NULL,
    external_id    TEXT NOT NULL,
    points         BIGINT,
    comments       BIGINT,
    discussion_url TEXT,
    text           TEXT,
    tags           TEXT NOT NULL DEFAULT '[]',
    published_at   TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (article_id, source_name)
);

CREATE TABLE pages (
    article_id  BIGINT PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    description TEXT,
    text        TEXT,
    error       TEXT,
    fetched_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE summaries (
    article_id BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    model      TEXT NOT NULL,
    summary    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (article_id, model)
);

CREATE TABLE feed_state (
    source_name   TEXT PRIMARY KEY,
    etag          TEXT,
    last_modified TEXT,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE issues (
    id           BIGSERIAL PRIMARY KEY,
    topic        TEXT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    window_end   TIMESTAMPTZ NOT NULL,
    compiled_at  TIMESTAMPTZ NOT NULL,
    article_count BIGINT NOT NULL,
    content      TEXT NOT NULL,
    UNIQUE (topic, window_end)
);

CREATE TABLE issue_articles (
    issue_id   BIGINT NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    article_id BIGINT NOT NULL REFERENCES articles (id),
    position   BIGINT NOT NULL,
    PRIMARY KEY (issue_id, article_id)
);
CREATE INDEX issue_articles_article ON issue_articles (article_id);

CREATE TABLE deliveries (
    id               BIGSERIAL PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('digest','confirm')),
    issue_id         BIGINT REFERENCES issues (id),
    subscriber_id    BIGINT REFERENCES subscribers (id) ON DELETE SET NULL,
    email            TEXT NOT NULL,
    topic            TEXT,
    message_id       TEXT NOT NULL UNIQUE,
    payload          BYTEA,
    status           TEXT NOT NULL CHECK (status IN ('queued','sending','sent','deferred','failed','skipped')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    not_before       TIMESTAMPTZ NOT NULL,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    last_reply       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    sent_at          TIMESTAMPTZ,
    UNIQUE (issue_id, subscriber_id)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_issue ON deliveries (issue_id, status);

CREATE TABLE job_runs (
    job         TEXT PRIMARY KEY,
    last_run_at TIMESTAMPTZ,
    last_result TEXT,
    next_run_at TIMESTAMPTZ,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE locks (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
