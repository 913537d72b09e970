-- The dashboard: the operator's password hash (an instance-wide setting) and
-- sign-in sessions, kept in the record so every node honours them.
CREATE TABLE instance_settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- `id` is the SHA-256 hex of the session cookie's token: the token itself is
-- never stored.
CREATE TABLE dashboard_sessions (
    id          TEXT PRIMARY KEY,
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at);
