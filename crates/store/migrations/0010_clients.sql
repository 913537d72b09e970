-- The rest of the official Agent object, spam flags, notification mails, and the
-- Apify run storages the official Apify clients read (log, default key-value store).

-- Agent settings as the contract's JSON (TEXT, NULL when unset).
ALTER TABLE agents ADD COLUMN channel_instructions TEXT;
ALTER TABLE agents ADD COLUMN notifications_settings TEXT;
ALTER TABLE agents ADD COLUMN spam_settings TEXT;
ALTER TABLE agents ADD COLUMN voice_settings TEXT;
ALTER TABLE agents ADD COLUMN blocked_countries TEXT;
ALTER TABLE agents ADD COLUMN styles TEXT;

-- A user message the spam check flagged: stored, never answered.
ALTER TABLE messages ADD COLUMN spam BIGINT NOT NULL DEFAULT 0;

-- One row per (agent, notification, UTC day) sent: the primary key makes exactly
-- one node send each day's mail.
CREATE TABLE notification_sends (
    agent_id  TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    kind      TEXT NOT NULL,
    day       BIGINT NOT NULL,
    sent_at   BIGINT NOT NULL,
    PRIMARY KEY (agent_id, kind, day)
);

-- A run's default key-value store (INPUT is written when the run starts).
ALTER TABLE crawl_runs ADD COLUMN kv_store_id TEXT;
CREATE INDEX crawl_runs_by_kv_store ON crawl_runs (kv_store_id);

CREATE TABLE kv_records (
    store_id      TEXT NOT NULL,
    record_key    TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (store_id, record_key)
);

-- A run's log, one line per row in order, so it can be streamed while it grows.
CREATE TABLE crawl_run_log (
    run_id  TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    line    TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
