-- Keys the service makes for itself on first use and shares across its
-- replicas, such as the one that keys audit fingerprints.
CREATE TABLE server_keys (
    name       TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
