-- Human handoff and the helpdesk (issue 16): an agent's ticket statuses and teams,
-- its tickets (each may belong to a conversation) with their threads, and who
-- answered a conversation message when a person did.

-- One row per status; every agent gets one default per category on first use
-- (the unique key makes that seeding safe to race).
CREATE TABLE ticket_statuses (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    agent_id        TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    category        TEXT NOT NULL,
    external_label  TEXT NOT NULL,
    internal_label  TEXT NOT NULL,
    color           TEXT,
    is_default      BIGINT NOT NULL,
    position        BIGINT NOT NULL,
    UNIQUE (agent_id, category, position)
);

CREATE TABLE helpdesk_teams (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    agent_id      TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    is_default    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (agent_id, name)
);

-- `number` counts per agent from 1. The assignee is stored as given (id and/or
-- email) until team members exist to resolve it. `metadata` is JSON.
CREATE TABLE tickets (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    agent_id         TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    number           BIGINT NOT NULL,
    conversation_id  TEXT,
    subject          TEXT,
    description      TEXT,
    status_id        TEXT NOT NULL,
    status_category  TEXT NOT NULL,
    assignee_id      TEXT,
    assignee_email   TEXT,
    team_id          TEXT,
    priority         TEXT NOT NULL,
    channel          TEXT NOT NULL,
    customer_id      TEXT NOT NULL,
    customer_name    TEXT,
    customer_email   TEXT,
    customer_phone   TEXT,
    metadata         TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    last_message_at  BIGINT,
    UNIQUE (agent_id, number)
);
CREATE INDEX tickets_by_conversation ON tickets (conversation_id);
CREATE INDEX tickets_by_agent_updated ON tickets (agent_id, updated_at);

-- A ticket's thread: replies (customer-visible), notes and events. `sender` is
-- JSON (null on events), `metadata` JSON on events.
CREATE TABLE ticket_messages (
    id            TEXT PRIMARY KEY,
    ticket_id     TEXT NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    sender        TEXT,
    content       TEXT,
    content_text  TEXT,
    metadata      TEXT,
    created_at    BIGINT NOT NULL,
    UNIQUE (ticket_id, seq)
);

-- A conversation message written by a person (an operator's reply while the
-- conversation is taken over): the author as JSON. NULL: the AI (or the user).
ALTER TABLE messages ADD COLUMN author TEXT;
