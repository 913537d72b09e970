-- Website crawler runs with Apify's lifecycle, and their datasets (one row per item,
-- in insertion order, so offset pagination works while a run is still writing).
CREATE TABLE crawl_runs (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    actor_id        TEXT NOT NULL,
    status          TEXT NOT NULL,
    status_message  TEXT,
    input           TEXT NOT NULL,
    dataset_id      TEXT NOT NULL,
    timeout_secs    BIGINT NOT NULL,
    pages_done      BIGINT NOT NULL,
    pages_failed    BIGINT NOT NULL,
    items           BIGINT NOT NULL,
    node            TEXT,
    lease_until     BIGINT,
    started_at      BIGINT NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX crawl_runs_by_workspace ON crawl_runs (workspace_id, started_at);
CREATE INDEX crawl_runs_by_dataset ON crawl_runs (dataset_id);

CREATE TABLE dataset_items (
    dataset_id  TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    item        TEXT NOT NULL,
    PRIMARY KEY (dataset_id, seq)
);
