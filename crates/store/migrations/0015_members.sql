-- Workspace members (issue 16): people who sign in to the dashboard with their
-- own email and password. One account per email across the instance; a role per
-- workspace it belongs to. The operator password stays the administrator's.

-- `id` is a UUID (the helpdesk's "platform user id"). `password_hash` is an
-- Argon2id PHC string, NULL until an invitation is accepted (or after a reset,
-- until its link is used).
CREATE TABLE members (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    password_hash  TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE workspace_members (
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    member_id     TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    role          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, member_id)
);
CREATE INDEX workspace_members_by_member ON workspace_members (member_id);

-- One-time links (invitations and password resets). `id` is the SHA-256 hex of
-- the token in the link: the token itself is never stored. `used_at` is set when
-- the link is followed, so a second use is refused.
CREATE TABLE member_links (
    id            TEXT PRIMARY KEY,
    member_id     TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL,
    kind          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
);
CREATE INDEX member_links_by_member ON member_links (member_id);

-- Whose session: NULL is the instance administrator (the operator password).
ALTER TABLE dashboard_sessions ADD COLUMN member_id TEXT;
CREATE INDEX dashboard_sessions_by_member ON dashboard_sessions (member_id);
