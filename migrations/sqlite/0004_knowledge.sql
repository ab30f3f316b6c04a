-- Knowledge-base articles and their history. An article's id is its slug (the
-- file name without `.md` for imported files); every change adds a version row
-- saying who made it and what changed. Deleted articles keep their history.

CREATE TABLE kb_articles (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    tags         TEXT NOT NULL,        -- JSON array of strings
    locale       TEXT NOT NULL,
    url          TEXT,
    status       TEXT NOT NULL,        -- draft | published | deleted
    version      INTEGER NOT NULL,
    content_hash TEXT NOT NULL,        -- sha256 of the article's fields
    file_hash    TEXT,                 -- sha256 of the file as last imported; NULL: never imported
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE kb_article_versions (
    article_id TEXT NOT NULL REFERENCES kb_articles (id),
    version    INTEGER NOT NULL,
    author     TEXT NOT NULL,          -- `import` or who edited it through the admin API
    changes    TEXT NOT NULL,          -- JSON array: the fields that changed, or ["created"] / ["deleted"]
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    tags       TEXT NOT NULL,
    locale     TEXT NOT NULL,
    url        TEXT,
    status     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (article_id, version)
);
