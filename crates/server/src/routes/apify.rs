//! Apify-compatible crawler endpoints, so code written for Apify's Website Content
//! Crawler works with only the host changed: start a run, poll it (with
//! `waitForFinish`), abort it, read its dataset. The API key is accepted as Apify's
//! `token` query parameter or as a Bearer header (`layers::apify_token`).

use std::collections::BTreeMap;
use std::time::Duration;

use agentbase_core::crawl_run::CrawlRun;
use agentbase_core::time_fmt::iso8601;
use agentbase_service::Principal;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{QueryMap, parse_json};

/// Apify's Run object (the fields clients read; the rest as Apify documents them).
fn run_json(r: &CrawlRun) -> Value {
    let secs = r
        .finished_at
        .map(|f| (f - r.started_at) as f64 / 1000.0)
        .unwrap_or(0.0);
    json!({
        "id": r.id,
        "actId": r.actor_id,
        "userId": r.workspace_id,
        "actorTaskId": null,
        "startedAt": iso8601(r.started_at),
        "finishedAt": r.finished_at.map(iso8601),
        "status": r.status.as_str(),
        "statusMessage": r.status_message,
        "isStatusMessageTerminal": r.status.is_terminal(),
        "meta": {"origin": "API"},
        "stats": {
            "runTimeSecs": secs,
            "requestsFinished": r.pages_done,
            "requestsFailed": r.pages_failed,
            "itemCount": r.items,
        },
        "options": {"build": "latest", "timeoutSecs": r.timeout_secs, "memoryMbytes": 1024},
        "buildId": null,
        "buildNumber": null,
        "exitCode": if r.status.is_terminal() { Some(i32::from(r.status.as_str() != "SUCCEEDED")) } else { None },
        "defaultKeyValueStoreId": null,
        "defaultDatasetId": r.dataset_id,
        "defaultRequestQueueId": null,
        "generalAccess": "RESTRICTED",
        "usageTotalUsd": 0,
        "input": r.input,
    })
}

fn run_response(status: StatusCode, r: &CrawlRun) -> Response {
    let mut res = (status, axum::Json(json!({ "data": run_json(r) }))).into_response();
    if status == StatusCode::CREATED
        && let Ok(v) = HeaderValue::from_str(&format!("/v2/actor-runs/{}", r.id))
    {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

fn seconds(q: &QueryMap, key: &str, max: u64) -> Result<Option<u64>, ApiError> {
    match q.get(key) {
        None => Ok(None),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(|n| Some((n as u64).min(max)))
            .ok_or_else(|| ApiError::invalid_field(key, "must be a number of seconds")),
    }
}

#[utoipa::path(post, path = "/v2/acts/{actorId}/runs", tag = "apify",
    description = "Apify-compatible: starts a Website Content Crawler run with the WCC input in the body. Auth: `token` query parameter or Bearer.",
    params(("actorId" = String, Path, description = "website-content-crawler or apify~website-content-crawler"),
           ("token" = Option<String>, Query), ("timeout" = Option<u64>, Query), ("waitForFinish" = Option<u64>, Query)),
    responses((status = 201, description = "`{\"data\": Run}` with a Location header"), (status = 400, body = agentbase_api_types::ErrorResponse),
              (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn start(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(actor_id): Path<String>,
    q: QueryMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        parse_json(&body)?
    };
    if !(input.is_null() || input.is_object()) {
        return Err(ApiError::invalid_field(
            "body",
            "the actor input must be a JSON object",
        ));
    }
    let timeout = seconds(&q, "timeout", 7 * 24 * 3600)?;
    let wait = seconds(&q, "waitForFinish", 60)?;
    let run = state
        .app
        .start_run(&p, &actor_id, input, timeout.filter(|t| *t > 0))
        .await?;
    let run = match wait {
        Some(w) if w > 0 => state.app.run(&p, &run.id, Duration::from_secs(w)).await?,
        _ => run,
    };
    Ok(run_response(StatusCode::CREATED, &run))
}

#[utoipa::path(get, path = "/v2/actor-runs/{runId}", tag = "apify",
    description = "Apify-compatible: the run; `waitForFinish` (≤ 60 s) waits for it to end.",
    params(("runId" = String, Path), ("waitForFinish" = Option<u64>, Query)),
    responses((status = 200, description = "`{\"data\": Run}`"), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(run_id): Path<String>,
    q: QueryMap,
) -> Result<Response, ApiError> {
    let wait = seconds(&q, "waitForFinish", 60)?.unwrap_or(0);
    let run = state
        .app
        .run(&p, &run_id, Duration::from_secs(wait))
        .await?;
    Ok(run_response(StatusCode::OK, &run))
}

#[utoipa::path(post, path = "/v2/actor-runs/{runId}/abort", tag = "apify",
    description = "Apify-compatible: aborts the run (ABORTING, then ABORTED).",
    params(("runId" = String, Path)),
    responses((status = 200, description = "`{\"data\": Run}`"), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn abort(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    let run = state.app.abort_run(&p, &run_id).await?;
    Ok(run_response(StatusCode::OK, &run))
}

/// What a dataset request asks for.
struct ItemsQuery {
    format: String,
    offset: i64,
    limit: Option<i64>,
    desc: bool,
    clean: bool,
    fields: Option<Vec<String>>,
    omit: Vec<String>,
}

fn truthy(v: Option<&str>) -> bool {
    matches!(v, Some("1" | "true" | "yes"))
}

fn items_query(q: &QueryMap) -> Result<ItemsQuery, ApiError> {
    let mut details = BTreeMap::new();
    let format = q.get("format").unwrap_or("json").to_ascii_lowercase();
    if !matches!(format.as_str(), "json" | "jsonl" | "csv") {
        details.insert("format".into(), "json, jsonl or csv".into());
    }
    let mut int = |key: &str| match q.get(key) {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                details.insert(key.into(), "must be a non-negative integer".into());
                None
            }
        },
    };
    let offset = int("offset").unwrap_or(0);
    let limit = int("limit");
    if !details.is_empty() {
        return Err(ApiError::invalid_body(details));
    }
    let list = |key: &str| {
        q.get(key).map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
    };
    Ok(ItemsQuery {
        format,
        offset,
        limit,
        desc: truthy(q.get("desc")),
        clean: truthy(q.get("clean")) || truthy(q.get("skipHidden")),
        fields: list("fields"),
        omit: list("omit").unwrap_or_default(),
    })
}

/// Applies `clean` (hidden `#fields` and empty items dropped), `fields` and `omit`.
fn shape(items: Vec<Value>, q: &ItemsQuery) -> Vec<Value> {
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Object(mut map) = item else {
                return Some(item);
            };
            if q.clean {
                map.retain(|k, _| !k.starts_with('#'));
                if map.is_empty() {
                    return None;
                }
            }
            if let Some(fields) = &q.fields {
                let mut picked = Map::new();
                for f in fields {
                    if let Some(v) = map.remove(f) {
                        picked.insert(f.clone(), v);
                    }
                }
                map = picked;
            }
            for f in &q.omit {
                map.remove(f);
            }
            Some(Value::Object(map))
        })
        .collect()
}

/// Nested objects flattened to `a/b` columns, as Apify's CSV export does. Text
/// cells are made safe for spreadsheets (see [`spreadsheet_safe`]).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}/{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}/{i}"), v, out);
            }
        }
        Value::Null => out.push((prefix.to_owned(), String::new())),
        Value::String(s) => out.push((prefix.to_owned(), spreadsheet_safe(s))),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// A text cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, or a
/// tab or carriage return before one) gets a leading `'`, as OWASP advises; crawled
/// pages are anyone's text.
fn spreadsheet_safe(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Columns of one CSV export; the rest of an item's fields are left out.
const MAX_CSV_COLUMNS: usize = 2_000;

/// CSV with a header row; with `fields`, columns follow their order. Linear in
/// the number of cells.
fn to_csv(items: &[Value], fields: Option<&[String]>) -> String {
    let rows: Vec<Vec<(String, String)>> = items
        .iter()
        .map(|i| {
            let mut row = Vec::new();
            flatten("", i, &mut row);
            row
        })
        .collect();
    let mut columns: Vec<String> = Vec::new();
    let mut known: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for row in &rows {
        for (k, _) in row {
            if columns.len() < MAX_CSV_COLUMNS && known.insert(k.as_str()) {
                columns.push(k.clone());
            }
        }
    }
    if let Some(fields) = fields {
        let rank = |c: &String| {
            let top = c.split('/').next().unwrap_or("");
            fields.iter().position(|f| f == top).unwrap_or(usize::MAX)
        };
        columns.sort_by_key(rank);
    }
    let index: std::collections::HashMap<&str, usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let mut out = columns
        .iter()
        .map(|c| csv_field(c))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    let mut cells = vec![String::new(); columns.len()];
    for row in &rows {
        cells.iter_mut().for_each(String::clear);
        for (k, v) in row {
            if let Some(&i) = index.get(k.as_str()) {
                cells[i] = csv_field(v);
            }
        }
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[utoipa::path(get, path = "/v2/datasets/{datasetId}/items", tag = "apify",
    description = "Apify-compatible: dataset items (also at /v2/actor-runs/{runId}/dataset/items), with format json|jsonl|csv, offset, limit, clean, fields, omit, desc and X-Apify-Pagination-* headers.",
    params(("datasetId" = String, Path), ("format" = Option<String>, Query), ("offset" = Option<u64>, Query),
           ("limit" = Option<u64>, Query), ("clean" = Option<bool>, Query), ("fields" = Option<String>, Query),
           ("omit" = Option<String>, Query), ("desc" = Option<bool>, Query)),
    responses((status = 200, description = "The items"), (status = 400, body = agentbase_api_types::ErrorResponse),
              (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn items(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    q: QueryMap,
) -> Result<Response, ApiError> {
    let query = items_query(&q)?;
    let (raw, total) = state
        .app
        .dataset_items(&p, &id, query.offset, query.limit, query.desc)
        .await?;
    let count = raw.len();
    let items = shape(raw, &query);
    let (content_type, body) = match query.format.as_str() {
        "jsonl" => (
            "application/jsonl; charset=utf-8",
            items.iter().map(|i| format!("{i}\n")).collect::<String>(),
        ),
        "csv" => (
            "text/csv; charset=utf-8",
            to_csv(&items, query.fields.as_deref()),
        ),
        _ => (
            "application/json; charset=utf-8",
            Value::Array(items).to_string(),
        ),
    };
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let limit = query
        .limit
        .map_or(total.max(0), |l| l)
        .min(agentbase_service::crawl_runs::MAX_ITEMS_PER_READ);
    for (name, value) in [
        ("x-apify-pagination-offset", query.offset),
        ("x-apify-pagination-limit", limit),
        ("x-apify-pagination-count", count as i64),
        ("x-apify-pagination-total", total),
    ] {
        h.insert(name, HeaderValue::from(value));
    }
    Ok(res)
}

/// `GET /v2/actor-runs/{runId}/dataset/items`: the run's dataset.
pub async fn run_items(
    state: State<AppState>,
    p: Extension<Principal>,
    id: Path<String>,
    q: QueryMap,
) -> Result<Response, ApiError> {
    items(state, p, id, q).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_flattens_nested_fields_into_slash_columns_and_quotes() {
        let items = vec![
            json!({"url": "https://a", "crawl": {"depth": 0}, "text": "x, \"y\""}),
            json!({"url": "https://b", "crawl": {"depth": 1}, "metadata": {"title": null}}),
        ];
        assert_eq!(
            to_csv(&items, None),
            "crawl/depth,text,url,metadata/title\n0,\"x, \"\"y\"\"\",https://a,\n1,,https://b,\n"
        );
        let fields = ["url".to_owned(), "crawl".to_owned()];
        assert!(to_csv(&items, Some(&fields)).starts_with("url,crawl/depth,"));
    }

    #[test]
    fn csv_cells_cannot_become_formulas_and_wide_items_stay_linear() {
        let items = vec![
            json!({"title": "=HYPERLINK(\"http://x\")", "a": "+1", "b": "-2", "c": "@SUM(A1)", "d": -3, "e": "fine"}),
        ];
        let csv = to_csv(&items, None);
        let row = csv.lines().nth(1).unwrap();
        assert_eq!(
            row,
            "'+1,'-2,'@SUM(A1),-3,fine,\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        // 100,000 fields in one item: the export is capped and quick.
        let wide: Map<String, Value> = (0..100_000).map(|i| (format!("k{i}"), json!(i))).collect();
        let started = std::time::Instant::now();
        let csv = to_csv(&[Value::Object(wide)], None);
        assert!(started.elapsed().as_secs() < 5);
        assert_eq!(
            csv.lines().next().unwrap().split(',').count(),
            MAX_CSV_COLUMNS
        );
    }

    #[test]
    fn clean_fields_and_omit_shape_items() {
        let q = |clean, fields: Option<Vec<&str>>, omit: Vec<&str>| ItemsQuery {
            format: "json".into(),
            offset: 0,
            limit: None,
            desc: false,
            clean,
            fields: fields.map(|f| f.into_iter().map(String::from).collect()),
            omit: omit.into_iter().map(String::from).collect(),
        };
        let items = vec![
            json!({"#debug": 1, "url": "u", "text": "t"}),
            json!({"#only": 2}),
        ];
        assert_eq!(
            shape(items.clone(), &q(true, None, vec![])),
            vec![json!({"url": "u", "text": "t"})]
        );
        assert_eq!(
            shape(items.clone(), &q(false, Some(vec!["url"]), vec![])),
            vec![json!({"url": "u"}), json!({})]
        );
        assert_eq!(
            shape(items, &q(true, None, vec!["text"])),
            vec![json!({"url": "u"})]
        );
    }
}
