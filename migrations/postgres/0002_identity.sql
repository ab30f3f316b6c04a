-- App Proxy signatures already used: a replayed request is refused.
CREATE TABLE used_signatures (
    signature  TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_signatures_expiry ON used_signatures (expires_at);

-- Identity decisions (verified, refused, failed, locked), for operators.
-- The subject (customer id, email, order number) is stored hashed: the
-- audit shows that attempts repeat, not who was guessed.
CREATE TABLE identity_audit (
    id             TEXT PRIMARY KEY,
    correlation_id TEXT NOT NULL,
    session_id     TEXT,
    method         TEXT NOT NULL,   -- token | app_proxy | order_email
    decision       TEXT NOT NULL,   -- verified | refused | failed | locked | issued
    subject_hash   TEXT,
    detail         TEXT,
    created_at     BIGINT NOT NULL
);
CREATE INDEX identity_audit_created ON identity_audit (created_at);
