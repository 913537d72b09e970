//! Apify's run object for a crawl run.

use agentbase_api_types::apify;
use agentbase_core::crawl_run::{CrawlRun, RunStatus};
use agentbase_core::time_fmt::iso8601;

/// Apify's Run object for a run.
/// The build every run reports: the crawler built into this server.
const BUILD_ID: &str = "agentbase-wcc";

pub(crate) fn run_dto(r: &CrawlRun) -> apify::Run {
    let secs = r
        .finished_at
        .map(|f| (f - r.started_at) as f64 / 1000.0)
        .unwrap_or(0.0);
    let terminal = r.status.is_terminal();
    apify::Run {
        id: r.id.clone(),
        act_id: r.actor_id.clone(),
        user_id: r.workspace_id.clone(),
        actor_task_id: None,
        started_at: iso8601(r.started_at),
        finished_at: r.finished_at.map(iso8601),
        status: r.status.as_str().to_owned(),
        status_message: r.status_message.clone(),
        is_status_message_terminal: terminal,
        meta: apify::RunMeta {
            origin: "API".into(),
        },
        stats: apify::RunStats {
            run_time_secs: secs,
            duration_millis: (secs * 1000.0) as i64,
            requests_finished: r.pages_done,
            requests_failed: r.pages_failed,
            item_count: r.items,
        },
        options: apify::RunOptions {
            build: "latest".into(),
            timeout_secs: r.timeout_secs,
            memory_mbytes: 1024,
            disk_mbytes: 2048,
        },
        build_id: BUILD_ID.into(),
        build_number: None,
        exit_code: terminal.then(|| i32::from(r.status != RunStatus::Succeeded)),
        default_key_value_store_id: r.kv_store_id.clone(),
        default_dataset_id: r.dataset_id.clone(),
        // The crawler's frontier is in memory, not a request queue; the id names
        // the run's (empty) queue so clients that expect one decode the run.
        default_request_queue_id: r.id.clone(),
        general_access: "RESTRICTED".into(),
        usage_total_usd: 0,
        input: r.input.clone(),
    }
}
