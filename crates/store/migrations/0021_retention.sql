-- Ageing out (`crawler.run_retention_days`, `webhooks.delivery_retention_days`):
-- ended runs by when they ended, finished deliveries by when they finished.
CREATE INDEX crawl_runs_by_finish ON crawl_runs (finished_at);
CREATE INDEX webhook_deliveries_by_finish ON webhook_deliveries (finished_at);
CREATE INDEX run_webhook_deliveries_by_finish ON run_webhook_deliveries (finished_at);

-- A run's dataset or key-value store deleted on its own (`DELETE /v2/datasets/{id}`,
-- `DELETE /v2/key-value-stores/{id}`): the run stays, the store reads as gone.
ALTER TABLE crawl_runs ADD COLUMN dataset_deleted_at BIGINT;
ALTER TABLE crawl_runs ADD COLUMN kv_store_deleted_at BIGINT;
