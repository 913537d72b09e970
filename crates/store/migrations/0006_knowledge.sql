-- The knowledge base: sources, the chunks training makes of them (with their
-- embeddings: the record is the truth, every node's index is a cache built from
-- it), the pages of link sources and the training jobs.
CREATE TABLE sources (
    id            TEXT PRIMARY KEY,
    agent_id      TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    content       TEXT NOT NULL,
    identity      TEXT NOT NULL,
    size          BIGINT NOT NULL,
    status        TEXT NOT NULL,
    generation    BIGINT NOT NULL,
    error         TEXT,
    crawl_status  TEXT,
    pages         BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    trained_at    BIGINT
);
CREATE INDEX sources_by_agent ON sources (agent_id, created_at, id);
CREATE INDEX sources_by_identity ON sources (agent_id, identity);

-- Fetched pages of link sources (a crawl replaces them as one set).
CREATE TABLE source_pages (
    source_id   TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    ord         BIGINT NOT NULL,
    url         TEXT NOT NULL,
    title       TEXT NOT NULL,
    markdown    TEXT NOT NULL,
    PRIMARY KEY (source_id, ord)
);

-- Chunks of one generation of a source; the source's `generation` says which is
-- live. A training writes a new generation beside the live one and switches in one
-- transaction, so a failed training leaves the previous knowledge in place.
CREATE TABLE chunks (
    id          TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    source_id   TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    generation  BIGINT NOT NULL,
    ord         BIGINT NOT NULL,
    title       TEXT NOT NULL,
    url         TEXT,
    heading     TEXT NOT NULL,
    text        TEXT NOT NULL,
    embedding   BYTEA NOT NULL
);
CREATE INDEX chunks_by_source ON chunks (source_id, generation, ord);
CREATE INDEX chunks_by_agent ON chunks (agent_id, source_id);

CREATE TABLE training_jobs (
    id           TEXT PRIMARY KEY,
    agent_id     TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    source_id    TEXT NOT NULL,
    status       TEXT NOT NULL,
    stage        TEXT NOT NULL,
    done         BIGINT NOT NULL,
    total        BIGINT NOT NULL,
    error        TEXT,
    attempts     BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX training_jobs_by_status ON training_jobs (status, created_at);
CREATE INDEX training_jobs_by_agent ON training_jobs (agent_id, created_at);

-- The agent's knowledge version: bumped by every switch; nodes compare it with the
-- snapshot they hold. next_retrain_at schedules auto-retrain.
ALTER TABLE agents ADD COLUMN kb_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN next_retrain_at BIGINT;

-- The sources an answer used, as JSON, for citations.
ALTER TABLE messages ADD COLUMN sources TEXT;
