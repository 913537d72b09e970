-- Workspaces, API keys and agents. Portable SQL: runs unchanged on SQLite and
-- PostgreSQL. Times are Unix milliseconds (BIGINT); booleans are 0/1 BIGINTs and
-- JSON lives in TEXT, so both engines decode them the same way through sqlx::Any.
CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    plan        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    last_used_at  BIGINT
);
CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id, created_at);

CREATE TABLE agents (
    id                  TEXT PRIMARY KEY,
    workspace_id        TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    instructions        TEXT NOT NULL,
    model               TEXT NOT NULL,
    temp                DOUBLE PRECISION NOT NULL,
    visibility          TEXT NOT NULL,
    auto_retrain        BIGINT NOT NULL,
    allowed_domains     TEXT,
    suggested_messages  TEXT,
    initial_messages    TEXT NOT NULL,
    credit_limit        BIGINT,
    ip_limit            BIGINT NOT NULL,
    ip_timeframe        BIGINT NOT NULL,
    ip_message          TEXT NOT NULL,
    status              TEXT NOT NULL,
    size                BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    last_trained_at     BIGINT,
    last_message_at     BIGINT
);
CREATE INDEX agents_by_workspace ON agents (workspace_id, created_at, id);
