-- Key-value records know their size, so a workspace's key-value storage can be
-- bounded (`crawler.kv_storage_limits`) without reading every value.
ALTER TABLE kv_records ADD COLUMN size BIGINT NOT NULL DEFAULT 0;
UPDATE kv_records SET size = LENGTH(value);
