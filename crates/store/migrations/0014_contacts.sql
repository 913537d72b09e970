-- Contacts and identity verification (issue 16, part 2): an agent's contacts, the
-- schema of their custom attributes, the agent's identity-verification secret, and
-- which widget conversations a verified user had.

-- The agent's contact schema. Attributes are never deleted, only archived.
CREATE TABLE contact_attributes (
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    agent_id      TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    label         TEXT NOT NULL,
    type          TEXT NOT NULL,
    description   TEXT,
    archived      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (agent_id, name)
);

-- An agent's contacts. `stripe_accounts` is a JSON array, `custom_attributes` a
-- JSON object keyed by attribute name. `external_id` is unique per agent, and so is
-- the email, whatever its case.
CREATE TABLE contacts (
    id                 TEXT PRIMARY KEY,
    workspace_id       TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    agent_id           TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    external_id        TEXT NOT NULL,
    name               TEXT,
    email              TEXT,
    phonenumber        TEXT,
    stripe_accounts    TEXT NOT NULL,
    custom_attributes  TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX contacts_external_id ON contacts (agent_id, external_id);
CREATE UNIQUE INDEX contacts_email ON contacts (agent_id, lower(email));
CREATE INDEX contacts_by_agent ON contacts (agent_id, created_at);

-- The agent's identity-verification secret (HMAC-SHA256 key of `user_hash`).
CREATE TABLE identity_secrets (
    agent_id      TEXT PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    secret        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Widget visitors who proved their user id (HMAC of it under the agent's secret),
-- with the unverified `user_metadata` they last sent. Their widget conversations
-- carry that user id, which is a contact's `external_id` when the agent has one.
CREATE TABLE visitor_identities (
    agent_id      TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL,
    metadata      TEXT,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (agent_id, user_id)
);
