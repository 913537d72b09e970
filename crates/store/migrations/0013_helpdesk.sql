-- The support-desk half (issue 16): webhook endpoints per agent and the outbox
-- their deliveries go through.

-- An agent's webhook endpoints. `events` is a JSON array of event names; `secret`
-- signs every delivery (HMAC-SHA1 of the raw body, `x-chatbase-signature`).
CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    agent_id      TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    url           TEXT NOT NULL,
    secret        TEXT NOT NULL,
    events        TEXT NOT NULL,
    active        BIGINT NOT NULL DEFAULT 1,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX webhooks_by_agent ON webhooks (agent_id);

-- The outbox: one row per (event, endpoint), written in the transaction that made
-- the event, so an event is delivered at least once whatever happens to the
-- process after the commit. `body` is the exact bytes sent and signed. A worker
-- claims a due row by moving `lease_until` forward (any node may; a node that dies
-- mid-delivery loses the lease and another retries).
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL,
    webhook_id       TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    workspace_id     TEXT NOT NULL,
    agent_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    body             TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT NOT NULL DEFAULT 0,
    last_status      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    finished_at      BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, created_at);

-- The delivery log: every attempt with its answer (status) or failure (error).
CREATE TABLE webhook_attempts (
    delivery_id  TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempt      BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    status_code  BIGINT,
    error        TEXT,
    PRIMARY KEY (delivery_id, attempt)
);

-- The agent's lead form (v1's collectCustomerInformation) as JSON, NULL when off.
ALTER TABLE agents ADD COLUMN lead_form TEXT;

-- What widget visitors gave through the lead form, with their conversation.
CREATE TABLE leads (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    agent_id         TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    conversation_id  TEXT,
    name             TEXT,
    email            TEXT,
    phone            TEXT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX leads_by_agent ON leads (agent_id, created_at);
