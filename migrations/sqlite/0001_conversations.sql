-- Sessions, conversations, messages, the per-session frame log and escalations.
-- Times are unix milliseconds; ids are UUID text. The same shape lives in
-- migrations/postgres so one set of queries serves both databases.

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    identity_status TEXT NOT NULL,             -- guest | order_verified | verified
    customer_id     TEXT,                      -- set once verified; resume must match it
    verified_order  TEXT,                      -- the one order an order_verified session may see
    locale          TEXT,
    last_seq        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id),
    status      TEXT NOT NULL DEFAULT 'open',  -- open | escalated | closed
    csat_score  INTEGER,
    csat_comment TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX conversations_session ON conversations (session_id);
CREATE INDEX conversations_updated ON conversations (updated_at);

CREATE TABLE messages (
    n                 INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order
    id                TEXT NOT NULL UNIQUE,
    conversation_id   TEXT NOT NULL REFERENCES conversations (id),
    role              TEXT NOT NULL,           -- customer | assistant | agent | system
    client_message_id TEXT,                    -- customer messages: the widget's id
    reply_to          TEXT,                    -- replies: the client message id answered
    text              TEXT NOT NULL,
    intent            TEXT,
    confidence        REAL,
    tools             TEXT,                    -- JSON list of tools the turn used
    outcome           TEXT,                    -- answered | verify_required | escalated | unanswered
    created_at        INTEGER NOT NULL
);
-- A resent client message id is a duplicate, never a second turn.
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, client_message_id);
CREATE INDEX messages_conversation ON messages (conversation_id, n);

-- Every server frame with a seq, so a resumed socket can replay what it missed.
CREATE TABLE frames (
    session_id TEXT NOT NULL REFERENCES sessions (id),
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    reply_to   TEXT,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE INDEX frames_reply_to ON frames (session_id, reply_to);

CREATE TABLE escalations (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    reason          TEXT NOT NULL,
    note            TEXT,
    summary         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'requested',
    reference       TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX escalations_conversation ON escalations (conversation_id);

CREATE TABLE feedback (
    message_id TEXT PRIMARY KEY REFERENCES messages (id),
    rating     TEXT NOT NULL,
    comment    TEXT,
    created_at INTEGER NOT NULL
);
