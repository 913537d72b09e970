-- Apify's ad-hoc webhooks of a crawl run (the `webhooks` parameter of its start),
-- as the JSON array they were given in; NULL: none.
ALTER TABLE crawl_runs ADD COLUMN webhooks TEXT;

-- Their outbox: one row per (run, webhook, event), written when the event happens
-- (the run's end in the same transaction as its status), with the body and headers
-- as they are sent. Claimed with a lease like `webhook_deliveries`.
CREATE TABLE run_webhook_deliveries (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    run_id           TEXT NOT NULL REFERENCES crawl_runs(id) ON DELETE CASCADE,
    event_type       TEXT NOT NULL,
    url              TEXT NOT NULL,
    headers          TEXT NOT NULL,
    body             TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT NOT NULL DEFAULT 0,
    last_status      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    finished_at      BIGINT
);
CREATE INDEX run_webhook_deliveries_due ON run_webhook_deliveries (state, next_attempt_at);
CREATE INDEX run_webhook_deliveries_by_run ON run_webhook_deliveries (run_id);
