-- Model summaries are cached by what produced them: the article's URL, a hash of the text the
-- model was given, the model and the prompt version. A new text, model or prompt asks again;
-- re-running a period with the same ones costs no request. An empty summary records an answer
-- that was rejected (ungrounded or the wrong length), so it is not asked for again either.
-- The old cache (by article id and model) is dropped: it is only a cache.
DROP TABLE summaries;

CREATE TABLE summaries (
    url            TEXT NOT NULL,
    content_hash   TEXT NOT NULL,
    model          TEXT NOT NULL,
    prompt_version INTEGER NOT NULL,
    summary        TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (url, content_hash, model, prompt_version)
);
