-- Conversations, messages, pending tool calls and the credit ledger.
CREATE TABLE conversations (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    agent_id      TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    user_id       TEXT,
    title         TEXT,
    status        TEXT NOT NULL,
    source        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    -- A lease serialising turns: whoever holds turn_token until turn_expires runs
    -- the conversation's only active turn (works across nodes).
    turn_token    TEXT,
    turn_expires  BIGINT
);
CREATE INDEX conversations_by_agent ON conversations (agent_id, created_at, id);
CREATE INDEX conversations_by_user ON conversations (agent_id, user_id, updated_at, id);

CREATE TABLE messages (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq              BIGINT NOT NULL,
    role             TEXT NOT NULL,
    parts            TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    feedback         TEXT,
    score            DOUBLE PRECISION,
    finish_reason    TEXT,
    credits          DOUBLE PRECISION NOT NULL,
    UNIQUE (conversation_id, seq)
);

CREATE TABLE tool_calls (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    message_id       TEXT NOT NULL,
    name             TEXT NOT NULL,
    input            TEXT NOT NULL,
    status           TEXT NOT NULL,
    output           TEXT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX tool_calls_by_message ON tool_calls (message_id);

CREATE TABLE credit_ledger (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL,
    agent_id         TEXT NOT NULL,
    conversation_id  TEXT,
    message_id       TEXT,
    model            TEXT NOT NULL,
    credits          DOUBLE PRECISION NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX credit_ledger_by_workspace ON credit_ledger (workspace_id, created_at);
CREATE INDEX credit_ledger_by_agent ON credit_ledger (agent_id, created_at);
