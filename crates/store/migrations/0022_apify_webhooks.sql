-- Apify's persistent webhooks (`/v2/webhooks`): told of every run of the crawler
-- (`actor_id`) or of one run (`actor_run_id`), through the run webhooks' outbox.
-- `definition` is the webhook as JSON (`core::run_webhook::WebhookDefinition`).
CREATE TABLE apify_webhooks (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    actor_id         TEXT,
    actor_run_id     TEXT,
    idempotency_key  TEXT,
    definition       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    modified_at      BIGINT NOT NULL
);
CREATE INDEX apify_webhooks_by_workspace ON apify_webhooks (workspace_id, created_at);
CREATE UNIQUE INDEX apify_webhooks_by_idempotency_key
    ON apify_webhooks (workspace_id, idempotency_key);

-- A delivery of a persistent webhook names it (NULL: an ad-hoc webhook's).
ALTER TABLE run_webhook_deliveries ADD COLUMN webhook_id TEXT;
CREATE INDEX run_webhook_deliveries_by_webhook
    ON run_webhook_deliveries (webhook_id, created_at);
CREATE INDEX run_webhook_deliveries_by_workspace
    ON run_webhook_deliveries (workspace_id, created_at);
