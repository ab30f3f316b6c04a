-- The handoff to a help desk: the outbox of steps to deliver, the desk's
-- contact per customer, and the desk's webhooks, stored before they are
-- acknowledged. Times are unix milliseconds, as everywhere.

-- Where an escalation went, once known: the desk's contact and conversation
-- (the conversation id is the escalation's `reference`).
ALTER TABLE escalations ADD COLUMN contact_id TEXT;
ALTER TABLE escalations ADD COLUMN contact_role TEXT;
CREATE INDEX escalations_reference ON escalations (reference);

-- Written in the turn's transaction, delivered by a worker. A job runs only
-- after every earlier job of its escalation is done (n orders them).
CREATE TABLE handoff_jobs (
    n              BIGSERIAL PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    escalation_id  TEXT NOT NULL REFERENCES escalations (id),
    kind           TEXT NOT NULL,              -- open | reply
    payload        TEXT NOT NULL,              -- JSON: the package, or the message
    progress       TEXT NOT NULL DEFAULT '{}', -- JSON: the steps done so far
    state          TEXT NOT NULL,              -- pending | leased | done | dead
    attempts       BIGINT NOT NULL DEFAULT 0,
    available_at   BIGINT NOT NULL,              -- not before (backoff, Retry-After)
    lease_owner    TEXT,                       -- the worker that holds it
    lease_until    BIGINT,                       -- after this another worker may take it
    first_tried_at BIGINT,
    last_error     TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX handoff_jobs_due ON handoff_jobs (state, available_at);
CREATE INDEX handoff_jobs_escalation ON handoff_jobs (escalation_id, n);

-- Our customer → the desk's contact, so a customer is one contact.
CREATE TABLE desk_contacts (
    customer_key TEXT PRIMARY KEY,             -- customer:<id> | email:<address>
    contact_id   TEXT NOT NULL,
    role         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

-- Intercom notifications; a redelivery (same id) is a no-op.
CREATE TABLE intercom_webhooks (
    notification_id TEXT PRIMARY KEY,
    topic           TEXT NOT NULL,
    body            TEXT NOT NULL,             -- the raw body, exactly as signed
    status          TEXT NOT NULL,             -- received | relayed | ignored | failed
    detail          TEXT,
    received_at     BIGINT NOT NULL,
    processed_at    BIGINT
);
CREATE INDEX intercom_webhooks_status ON intercom_webhooks (status);
