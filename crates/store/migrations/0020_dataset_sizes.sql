-- A run's dataset knows its size in bytes, so a workspace's datasets can be bounded
-- (`crawler.dataset_storage_limits`) without reading every item.
ALTER TABLE crawl_runs ADD COLUMN dataset_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE crawl_runs SET dataset_bytes = COALESCE((SELECT SUM(LENGTH(item)) FROM dataset_items
    WHERE dataset_items.dataset_id = crawl_runs.dataset_id), 0);
