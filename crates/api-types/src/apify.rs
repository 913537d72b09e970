//! Apify's API objects as agentbase serves them for the Website Content Crawler:
//! the fields Apify's own clients (`apify-client` for JavaScript and Python) read,
//! the rest as Apify documents them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An actor run (`GET /v2/actor-runs/{runId}`, `POST /v2/acts/{actorId}/runs`, …),
/// sent inside `{"data": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub id: String,
    pub act_id: String,
    /// The workspace that started the run.
    pub user_id: String,
    pub actor_task_id: Option<String>,
    /// ISO 8601.
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `READY`, `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMING-OUT`, `TIMED-OUT`,
    /// `ABORTING` or `ABORTED`.
    pub status: String,
    pub status_message: Option<String>,
    pub is_status_message_terminal: bool,
    pub meta: RunMeta,
    pub stats: RunStats,
    pub options: RunOptions,
    pub build_id: String,
    pub build_number: Option<String>,
    /// 0 for a run that succeeded, 1 for one that ended otherwise; none while it runs.
    pub exit_code: Option<i32>,
    pub default_key_value_store_id: String,
    pub default_dataset_id: String,
    pub default_request_queue_id: String,
    pub general_access: String,
    pub usage_total_usd: u32,
    /// The run's input as it was given; left out of run lists.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub input: Value,
}

/// The account a token belongs to (`GET /v2/users/me`): here, the key's workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub username: String,
    pub profile: UserProfile,
    pub plan: UserPlan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPlan {
    /// The workspace's plan (`free`, `standard`, …).
    pub id: String,
}

/// A page of a list (`GET /v2/actor-runs`, `GET /v2/acts/{actorId}/runs`), sent
/// inside `{"data": …}`: Apify's offset pagination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub total: i64,
    pub offset: i64,
    pub limit: i64,
    pub desc: bool,
    pub count: usize,
    pub items: Vec<T>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunMeta {
    /// How the run was started: `API`.
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStats {
    pub run_time_secs: f64,
    pub duration_millis: i64,
    /// Pages crawled and pages that failed.
    pub requests_finished: i64,
    pub requests_failed: i64,
    /// Items in the run's default dataset.
    pub item_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunOptions {
    pub build: String,
    pub timeout_secs: i64,
    pub memory_mbytes: u32,
    pub disk_mbytes: u32,
}

/// `{"data": …}`, the envelope of every Apify object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Data<T> {
    pub data: T,
}

// The objects below list their fields in alphabetical order, the order they were
// first served in (from a `serde_json::Value` map).

/// The Website Content Crawler as an actor (`GET /v2/acts/{actorId}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    pub created_at: String,
    pub default_run_options: ActorRunOptions,
    pub id: String,
    pub is_public: bool,
    pub modified_at: String,
    pub name: String,
    pub stats: ActorStats,
    pub title: String,
    /// The workspace asking.
    pub user_id: String,
    pub username: String,
    pub versions: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorRunOptions {
    pub build: String,
    pub memory_mbytes: u32,
    pub timeout_secs: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorStats {
    pub total_runs: u32,
}

/// A run's default dataset (`GET /v2/datasets/{datasetId}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dataset {
    pub accessed_at: String,
    pub act_id: String,
    pub act_run_id: String,
    pub clean_item_count: i64,
    pub console_url: String,
    pub created_at: String,
    pub id: String,
    pub item_count: i64,
    pub items_public_url: String,
    pub modified_at: String,
    /// Always null: a run's default dataset has no name.
    pub name: Option<String>,
    pub user_id: String,
}

/// A run's default key-value store (`GET /v2/key-value-stores/{storeId}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyValueStore {
    pub accessed_at: String,
    pub act_id: String,
    pub act_run_id: String,
    pub console_url: String,
    pub created_at: String,
    pub id: String,
    pub keys_public_url: String,
    pub modified_at: String,
    /// Always null: a run's default store has no name.
    pub name: Option<String>,
    pub records_public_url: String,
    pub user_id: String,
}

/// A store's keys (`GET /v2/key-value-stores/{storeId}/keys`), all on one page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyValueStoreKeys {
    pub count: usize,
    pub exclusive_start_key: Option<String>,
    pub is_truncated: bool,
    pub items: Vec<KeyValueStoreKey>,
    pub limit: u32,
    pub next_exclusive_start_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValueStoreKey {
    pub key: String,
    /// Bytes.
    pub size: i64,
}

/// A persistent webhook (`/v2/webhooks`), sent inside `{"data": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    /// The workspace it belongs to.
    pub user_id: String,
    /// ISO 8601.
    pub created_at: String,
    pub modified_at: String,
    pub is_ad_hoc: bool,
    pub should_interpolate_strings: bool,
    pub event_types: Vec<String>,
    pub condition: WebhookCondition,
    pub ignore_ssl_errors: bool,
    pub do_not_retry: bool,
    pub request_url: String,
    pub payload_template: Option<String>,
    pub headers_template: Option<String>,
    pub description: Option<String>,
    pub idempotency_key: Option<String>,
    /// Always `HTTP_REQUEST`, Apify's one action.
    pub action_type: String,
}

/// Which runs a webhook hears of: the actor's, or one run's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookCondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_run_id: Option<String>,
}

/// A webhook dispatch (`/v2/webhook-dispatches`): one run event sent to one
/// webhook, persistent or ad-hoc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDispatch {
    pub id: String,
    pub user_id: String,
    /// A persistent webhook's id; for a run's ad-hoc webhook, `{runId}.{place}`.
    pub webhook_id: String,
    pub created_at: String,
    /// `ACTIVE` (still being sent), `SUCCEEDED` or `FAILED`.
    pub status: String,
    pub event_type: String,
    pub event_data: DispatchEventData,
    /// The last attempt (none before the first).
    pub calls: Vec<DispatchCall>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchEventData {
    pub actor_id: String,
    pub actor_run_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchCall {
    pub finished_at: Option<String>,
    pub error_message: Option<String>,
    pub response_status: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names Apify's clients read, spelled as Apify spells them.
    #[test]
    fn a_run_serialises_with_apifys_field_names() {
        let run = Run {
            id: "r".into(),
            act_id: "a".into(),
            user_id: "w".into(),
            actor_task_id: None,
            started_at: "2026-12-04T10:00:00.000Z".into(),
            finished_at: None,
            status: "RUNNING".into(),
            status_message: None,
            is_status_message_terminal: false,
            meta: RunMeta {
                origin: "API".into(),
            },
            stats: RunStats {
                run_time_secs: 0.0,
                duration_millis: 0,
                requests_finished: 3,
                requests_failed: 1,
                item_count: 3,
            },
            options: RunOptions {
                build: "latest".into(),
                timeout_secs: 60,
                memory_mbytes: 1024,
                disk_mbytes: 2048,
            },
            build_id: "b".into(),
            build_number: None,
            exit_code: None,
            default_key_value_store_id: "kv".into(),
            default_dataset_id: "ds".into(),
            default_request_queue_id: "r".into(),
            general_access: "RESTRICTED".into(),
            usage_total_usd: 0,
            input: serde_json::json!({"startUrls": []}),
        };
        let v = serde_json::to_value(&run).unwrap();
        for key in [
            "actId",
            "defaultDatasetId",
            "defaultKeyValueStoreId",
            "defaultRequestQueueId",
            "isStatusMessageTerminal",
            "usageTotalUsd",
            "exitCode",
        ] {
            assert!(v.get(key).is_some(), "{key} in {v}");
        }
        assert_eq!(v["stats"]["itemCount"], 3);
        assert_eq!(v["options"]["memoryMbytes"], 1024);
        assert_eq!(serde_json::from_value::<Run>(v).unwrap(), run);
    }
}
