-- Shopify webhooks: stored before they are acknowledged, processed after.
-- `webhook_id` is X-Shopify-Webhook-Id, so a redelivery is a no-op.

CREATE TABLE shopify_webhooks (
    webhook_id          TEXT PRIMARY KEY,
    topic               TEXT NOT NULL,
    shop                TEXT,
    correlation_id      TEXT NOT NULL,             -- in every log line about this event
    body                TEXT NOT NULL,             -- the raw body, exactly as signed
    status              TEXT NOT NULL,             -- received | processed | ignored | stale | failed
    detail              TEXT,                      -- why it was ignored or failed
    resource            TEXT,                      -- e.g. order:820982911946154508
    resource_updated_at BIGINT,                   -- the body's updated_at, unix ms
    received_at         BIGINT NOT NULL,
    processed_at        BIGINT
);
CREATE INDEX shopify_webhooks_status ON shopify_webhooks (status);
CREATE INDEX shopify_webhooks_received ON shopify_webhooks (received_at);

-- The newest `updated_at` applied per resource: an older update arriving late is ignored.
CREATE TABLE shopify_resource_versions (
    resource   TEXT PRIMARY KEY,
    updated_at BIGINT NOT NULL
);
