//! Apify's objects for a crawl run: the run, the actor, the run's dataset and
//! key-value store, and the store's keys; and persistent webhooks and the
//! dispatches of every run webhook.

use agentbase_api_types::apify;
use agentbase_core::crawl_run::{CrawlRun, RunStatus};
use agentbase_core::run_webhook::{ApifyWebhook, Dispatch};
use agentbase_core::time_fmt::iso8601;
use agentbase_core::webhook::DeliveryState;
use agentbase_service::crawl_runs::{ACTOR_ID, ACTOR_NAME};

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

/// [`run_dto`] as JSON without the input (Apify's Run object has none, and an
/// input may be megabytes): what run webhooks send as their `resource`.
pub(crate) fn run_value(r: &CrawlRun) -> serde_json::Value {
    let mut run = run_dto(r);
    run.input = serde_json::Value::Null;
    serde_json::to_value(run).unwrap_or_default()
}

/// The Website Content Crawler as an Apify actor, as `workspace_id` sees it.
pub(crate) fn actor_dto(workspace_id: &str) -> apify::Actor {
    let epoch = iso8601(0);
    apify::Actor {
        created_at: epoch.clone(),
        default_run_options: apify::ActorRunOptions {
            build: "latest".into(),
            memory_mbytes: 1024,
            timeout_secs: 3600,
        },
        id: ACTOR_ID.into(),
        is_public: true,
        modified_at: epoch,
        name: ACTOR_NAME.into(),
        stats: apify::ActorStats { total_runs: 0 },
        title: "Website Content Crawler".into(),
        user_id: workspace_id.to_owned(),
        username: "apify".into(),
        versions: Vec::new(),
    }
}

/// The run's default dataset; `base` is the origin its URLs start with.
pub(crate) fn dataset_dto(run: &CrawlRun, base: &str) -> apify::Dataset {
    let changed = iso8601(run.finished_at.unwrap_or(run.started_at));
    let id = &run.dataset_id;
    apify::Dataset {
        accessed_at: changed.clone(),
        act_id: run.actor_id.clone(),
        act_run_id: run.id.clone(),
        clean_item_count: run.items,
        console_url: format!("{base}/v2/datasets/{id}"),
        created_at: iso8601(run.started_at),
        id: id.clone(),
        item_count: run.items,
        items_public_url: format!("{base}/v2/datasets/{id}/items"),
        modified_at: changed,
        name: None,
        user_id: run.workspace_id.clone(),
    }
}

/// The run's default key-value store; `base` is the origin its URLs start with.
pub(crate) fn kv_store_dto(run: &CrawlRun, base: &str) -> apify::KeyValueStore {
    let changed = iso8601(run.finished_at.unwrap_or(run.started_at));
    let id = &run.kv_store_id;
    apify::KeyValueStore {
        accessed_at: changed.clone(),
        act_id: run.actor_id.clone(),
        act_run_id: run.id.clone(),
        console_url: format!("{base}/v2/key-value-stores/{id}"),
        created_at: iso8601(run.started_at),
        id: id.clone(),
        keys_public_url: format!("{base}/v2/key-value-stores/{id}/keys"),
        modified_at: changed,
        name: None,
        records_public_url: format!("{base}/v2/key-value-stores/{id}/records"),
        user_id: run.workspace_id.clone(),
    }
}

/// A store's keys with their sizes, all on one page.
pub(crate) fn kv_keys_dto(keys: Vec<(String, i64)>) -> apify::KeyValueStoreKeys {
    let items: Vec<_> = (keys.into_iter())
        .map(|(key, size)| apify::KeyValueStoreKey { key, size })
        .collect();
    apify::KeyValueStoreKeys {
        count: items.len(),
        exclusive_start_key: None,
        is_truncated: false,
        items,
        limit: 1000,
        next_exclusive_start_key: None,
    }
}

/// Apify's Webhook object for a persistent webhook.
pub(crate) fn webhook_dto(w: &ApifyWebhook) -> apify::Webhook {
    let d = &w.definition;
    apify::Webhook {
        id: w.id.clone(),
        user_id: w.workspace_id.clone(),
        created_at: iso8601(w.created_at),
        modified_at: iso8601(w.modified_at),
        is_ad_hoc: d.is_ad_hoc,
        should_interpolate_strings: d.hook.should_interpolate_strings,
        event_types: d.hook.event_types.clone(),
        condition: apify::WebhookCondition {
            actor_id: d.condition.actor_id.clone(),
            actor_run_id: d.condition.actor_run_id.clone(),
        },
        ignore_ssl_errors: d.ignore_ssl_errors,
        do_not_retry: d.hook.do_not_retry,
        request_url: d.hook.request_url.clone(),
        payload_template: d.hook.payload_template.clone(),
        headers_template: d.hook.headers_template.clone(),
        description: d.description.clone(),
        idempotency_key: d.hook.idempotency_key.clone(),
        action_type: "HTTP_REQUEST".into(),
    }
}

/// Apify's WebhookDispatch object for a delivery of a run event.
pub(crate) fn dispatch_dto(d: &Dispatch) -> apify::WebhookDispatch {
    let webhook_id = d.webhook_id.clone().unwrap_or_else(|| {
        // An ad-hoc webhook is its run and its place (the delivery id's first two
        // parts).
        d.id.splitn(3, '.').take(2).collect::<Vec<_>>().join(".")
    });
    apify::WebhookDispatch {
        id: d.id.clone(),
        user_id: d.workspace_id.clone(),
        webhook_id,
        created_at: iso8601(d.created_at),
        status: match d.state {
            DeliveryState::Pending => "ACTIVE",
            DeliveryState::Delivered => "SUCCEEDED",
            DeliveryState::Failed => "FAILED",
        }
        .into(),
        event_type: d.event_type.clone(),
        event_data: apify::DispatchEventData {
            actor_id: ACTOR_ID.into(),
            actor_run_id: (!d.run_id.is_empty()).then(|| d.run_id.clone()),
        },
        calls: if d.attempts > 0 || d.last_error.is_some() {
            vec![apify::DispatchCall {
                finished_at: d.finished_at.map(iso8601),
                error_message: d.last_error.clone(),
                response_status: d.last_status,
            }]
        } else {
            Vec::new()
        },
    }
}
