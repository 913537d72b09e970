//! Apify-compatible crawler endpoints, so code written for Apify's Website Content
//! Crawler works with only the host changed: start a run, poll it (with
//! `waitForFinish`), abort it, read its dataset. The API key is accepted as Apify's
//! `token` query parameter or as a Bearer header (`layers::apify_token`).

use std::time::Duration;

use agentbase_api_types::{apify, codes};
use agentbase_core::crawl_run::{CrawlRun, RunFilter, RunStatus};
use agentbase_core::run_webhook;
use agentbase_core::time_fmt::parse_date_bound;
use agentbase_service::Principal;
use agentbase_service::crawl_runs::{MAX_RUNS_PER_PAGE, RunOptions, known_actor};
use axum::Extension;
use axum::extract::{FromRequest, FromRequestParts, Path, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::AppState;
use crate::dto::apify::{actor_dto, dataset_dto, kv_keys_dto, kv_store_dto, run_dto};
use crate::error::ApiError;
use crate::extract::{QueryMap, RawBody, parse_json};
use crate::routes::dataset_items::{self, ItemsQuery, truthy};

/// An Apify object in its `{"data": …}` envelope.
pub(crate) fn data<T: serde::Serialize>(object: T) -> Response {
    axum::Json(apify::Data { data: object }).into_response()
}

fn run_response(status: StatusCode, r: &CrawlRun) -> Response {
    let mut res = (status, axum::Json(json!({ "data": run_dto(r) }))).into_response();
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

/// A run's start: `timeout` (capped at a week) and `waitForFinish` (capped at 60),
/// in seconds, `maxItems`, and `webhooks` (Apify's ad-hoc webhooks, base64 JSON).
pub struct StartQuery {
    options: RunOptions,
    wait: Option<u64>,
}

impl<S: Send + Sync> FromRequestParts<S> for StartQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        let max_items = match q.get("maxItems") {
            None => None,
            Some(v) => Some(
                v.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 1.0)
                    .map(|n| n.min(u64::MAX as f64) as u64)
                    .ok_or_else(|| {
                        ApiError::invalid_field("maxItems", "must be a number from 1")
                    })?,
            ),
        };
        let timeout_secs = seconds(&q, "timeout", 7 * 24 * 3600)?.filter(|t| *t > 0);
        let webhooks = match q.get("webhooks") {
            None => Vec::new(),
            Some(v) => run_webhook::parse_param(v).map_err(ApiError::invalid_body)?,
        };
        Ok(StartQuery {
            options: RunOptions {
                timeout_secs,
                max_items,
                webhooks,
            },
            wait: seconds(&q, "waitForFinish", 60)?,
        })
    }
}

/// The runs a list or `last` keeps: `status` (comma-separated statuses; none:
/// any), `startedAfter` and `startedBefore` (dates or date-times, inclusive).
fn run_filter(q: &QueryMap) -> Result<RunFilter, ApiError> {
    let statuses = match q.get("status") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|s| RunStatus::parse(s.trim()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "status",
                    "READY, RUNNING, SUCCEEDED, FAILED, TIMED-OUT, ABORTING or ABORTED (comma-separated)",
                )
            })?,
    };
    let bound = |key: &str, end_of_day: bool| match q.get(key) {
        None => Ok(None),
        Some(v) => parse_date_bound(v, end_of_day)
            .map(Some)
            .ok_or_else(|| ApiError::invalid_field(key, "must be a date or an ISO 8601 date-time")),
    };
    Ok(RunFilter {
        statuses,
        started_after: bound("startedAfter", false)?,
        started_before: bound("startedBefore", true)?,
        ..RunFilter::default()
    })
}

/// The run a path names: `/v2/actor-runs/{runId}/…`, `/v2/logs/{runId}`, or
/// `/v2/acts/{actorId}/runs/{runId}/…`, where the actor must be the crawler and
/// the run may be `last`: the newest run, of those in the `status` query
/// parameter's statuses when it has some (Apify's `last_run(status=…)`).
pub struct RunRef(String);

impl FromRequestParts<AppState> for RunRef {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found())?;
        let mut run = None;
        for (name, value) in &params {
            match name {
                "actorId" => known_actor(value)?,
                "runId" => run = Some(value.to_owned()),
                _ => {}
            }
        }
        let run = run.ok_or_else(ApiError::not_found)?;
        let p = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(ApiError::internal)?;
        // The filter is `last`'s; a run named by its id ignores it, as on Apify.
        let filter = if run == "last" {
            let Ok(q) = QueryMap::from_request_parts(parts, state).await;
            run_filter(&q)?
        } else {
            RunFilter::default()
        };
        let id = state.app.crawl_runs().run_id_of(&p, &run, &filter).await?;
        Ok(RunRef(id))
    }
}

/// `waitForFinish`: seconds (at most 60) to wait for the run to end.
pub struct WaitQuery(u64);

impl<S: Send + Sync> FromRequestParts<S> for WaitQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        Ok(WaitQuery(seconds(&q, "waitForFinish", 60)?.unwrap_or(0)))
    }
}

/// A run's input: a JSON object, or nothing or `null` (WCC's defaults).
pub struct ActorInput(Value);

impl<S: Send + Sync> FromRequest<S> for ActorInput {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let RawBody(body) = RawBody::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        actor_input(&body)
            .map(ActorInput)
            .map_err(IntoResponse::into_response)
    }
}

#[utoipa::path(post, path = "/v2/actors/{actorId}/runs", tag = "apify",
    description = "Apify-compatible (also /v2/acts/...; the id may be `apify~website-content-crawler`, `apify/website-content-crawler` or the actor id): starts a Website Content Crawler run with the WCC input in the body. Auth: `token` query parameter or Bearer.",
    params(("actorId" = String, Path, description = "website-content-crawler or apify~website-content-crawler"),
           ("token" = Option<String>, Query),
           ("timeout" = Option<f64>, Query, minimum = 0, description = "seconds; longer values are capped at a week"),
           ("waitForFinish" = Option<f64>, Query, minimum = 0, description = "seconds; longer waits are capped at 60"),
           ("maxItems" = Option<f64>, Query, minimum = 1, description = "most dataset items the run writes"),
           ("webhooks" = Option<String>, Query, description = "Apify's ad-hoc webhooks: base64 of a JSON array of `{eventTypes, requestUrl, payloadTemplate?, headersTemplate?, doNotRetry?, shouldInterpolateStrings?}`; at most 10, told of ACTOR.RUN.CREATED and the run's end")),
    responses((status = 201, description = "`{\"data\": Run}` with a Location header"), (status = 400, body = agentbase_api_types::ErrorResponse),
              (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn start(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(actor_id): Path<String>,
    q: Result<StartQuery, ApiError>,
    ActorInput(input): ActorInput,
) -> Result<Response, ApiError> {
    // The body is judged before the query, as it always was.
    let q = q?;
    let run = state
        .app
        .crawl_runs()
        .start_and_wait(&p, &actor_id, input, q.options, q.wait)
        .await?;
    Ok(run_response(StatusCode::CREATED, &run))
}

fn actor_input(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let input: Value = parse_json(body)?;
    if !(input.is_null() || input.is_object()) {
        let problem = "the actor input must be a JSON object";
        return Err(ApiError::invalid_field("body", problem));
    }
    Ok(input)
}

#[utoipa::path(get, path = "/v2/actor-runs/{runId}", tag = "apify",
    description = "Apify-compatible: the run; `waitForFinish` (≤ 60 s) waits for it to end.",
    params(("runId" = String, Path),
           ("waitForFinish" = Option<f64>, Query, minimum = 0, description = "seconds; longer waits are capped at 60")),
    responses((status = 200, description = "`{\"data\": Run}`"), (status = 400, body = agentbase_api_types::ErrorResponse),
              (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    RunRef(run_id): RunRef,
    WaitQuery(wait): WaitQuery,
) -> Result<Response, ApiError> {
    let run = state
        .app
        .crawl_runs()
        .run(&p, &run_id, Duration::from_secs(wait))
        .await?;
    Ok(run_response(StatusCode::OK, &run))
}

#[utoipa::path(delete, path = "/v2/actor-runs/{runId}", tag = "apify",
    description = "Apify-compatible (also under /v2/acts/{actorId}/runs/...): deletes an ended run with its dataset, log and key-value store (how a workspace at its dataset storage limit makes room); a run still going is 409 (abort it first).",
    params(("runId" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = agentbase_api_types::ErrorResponse),
              (status = 409, body = agentbase_api_types::ErrorResponse)))]
pub async fn delete_run(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    RunRef(run_id): RunRef,
) -> Result<Response, ApiError> {
    state.app.crawl_runs().delete_run(&p, &run_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/v2/actor-runs/{runId}/abort", tag = "apify",
    description = "Apify-compatible: aborts the run (ABORTING, then ABORTED).",
    params(("runId" = String, Path)),
    responses((status = 200, description = "`{\"data\": Run}`"), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn abort(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    RunRef(run_id): RunRef,
) -> Result<Response, ApiError> {
    let run = state.app.crawl_runs().abort_run(&p, &run_id).await?;
    Ok(run_response(StatusCode::OK, &run))
}

#[utoipa::path(get, path = "/v2/datasets/{datasetId}/items", tag = "apify",
    description = "Apify-compatible: dataset items (also at /v2/actor-runs/{runId}/dataset/items), with format json|jsonl|csv|html|xml|rss|xlsx, offset, limit, clean, skipHidden, skipEmpty, fields, omit, unwind, flatten, desc, attachment, bom (on by default for CSV only, as Apify), for CSV delimiter and skipHeaderRow, for XML xmlRoot and xmlRow, and the legacy simplified and skipFailedPages; `view` is refused (400). A workspace has at most 8 reads in flight (429 past them). X-Apify-Pagination-* headers.",
    params(("datasetId" = String, Path), ("format" = Option<String>, Query), ("offset" = Option<u64>, Query),
           ("limit" = Option<u64>, Query),
           ("clean" = Option<String>, Query, description = "`1`, `true` or `yes` drop hidden fields and empty items; any other value does not (as Apify)"),
           ("skipHidden" = Option<String>, Query), ("skipEmpty" = Option<String>, Query),
           ("fields" = Option<String>, Query), ("omit" = Option<String>, Query),
           ("unwind" = Option<String>, Query, description = "comma-separated fields: an array makes a record per element, an object is merged into the item"),
           ("flatten" = Option<String>, Query, description = "comma-separated fields whose nested objects become `field.key` fields"),
           ("desc" = Option<String>, Query, description = "`1`, `true` or `yes` for newest first; any other value does not (as Apify)"),
           ("attachment" = Option<String>, Query), ("bom" = Option<String>, Query),
           ("delimiter" = Option<String>, Query, description = "CSV: one character"), ("skipHeaderRow" = Option<String>, Query),
           ("xmlRoot" = Option<String>, Query), ("xmlRow" = Option<String>, Query),
           ("simplified" = Option<String>, Query), ("skipFailedPages" = Option<String>, Query)),
    responses((status = 200, description = "The items"), (status = 400, body = agentbase_api_types::ErrorResponse),
              (status = 404, body = agentbase_api_types::ErrorResponse), (status = 429, body = agentbase_api_types::ErrorResponse)))]
pub async fn items(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    query: ItemsQuery,
) -> Result<Response, ApiError> {
    let (offset, limit, desc) = (query.offset, query.limit, query.desc);
    let read = state
        .app
        .crawl_runs()
        .dataset_items(&p, &id, offset, limit, desc);
    let read = read.await?;
    // Writing a page (up to 16 MB of items, as a spreadsheet say) is CPU work:
    // off the request threads.
    let encode = move || dataset_items::respond(read.items, read.total, &query, &id);
    let res = tokio::task::spawn_blocking(encode)
        .await
        .map_err(|_| ApiError::internal())?;
    Ok(held_until_sent(res, read.place))
}

/// `res` with `place` held until its body has been sent (or the client has gone):
/// a dataset read's bytes stay in memory while a slow client reads them, so the
/// workspace's places bound what its readers hold.
fn held_until_sent<T: Send + Sync + 'static>(res: Response, place: T) -> Response {
    let (parts, body) = res.into_parts();
    let stream = body.into_data_stream().map(move |chunk| {
        let _held = &place;
        chunk
    });
    Response::from_parts(parts, axum::body::Body::from_stream(stream))
}

/// `GET /v2/actor-runs/{runId}/dataset/items`: the run's dataset.
pub async fn run_items(
    state: State<AppState>,
    p: Extension<Principal>,
    RunRef(id): RunRef,
    query: ItemsQuery,
) -> Result<Response, ApiError> {
    items(state, p, Path(id), query).await
}

/// `POST /v2/acts/{user}/{name}/runs` (an actor id written with a `/`).
pub async fn start_named(
    state: State<AppState>,
    p: Extension<Principal>,
    Path((user, name)): Path<(String, String)>,
    q: Result<StartQuery, ApiError>,
    input: ActorInput,
) -> Result<Response, ApiError> {
    start(state, p, Path(format!("{user}/{name}")), q, input).await
}

/// The base URL the client used, for the URLs Apify's objects carry.
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// `GET /v2/actors/{actorId}`: the Website Content Crawler as an Apify actor.
#[utoipa::path(get, path = "/v2/actors/{actorId}", tag = "apify",
    description = "Apify-compatible: the Website Content Crawler as an actor (also /v2/acts/{actorId}).",
    params(("actorId" = String, Path)),
    responses((status = 200, description = "As Apify answers"), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn actor(
    Extension(p): Extension<Principal>,
    Path(actor_id): Path<String>,
) -> Result<Response, ApiError> {
    known_actor(&actor_id)?;
    Ok(data(actor_dto(&p.workspace_id)))
}

/// `GET /v2/users/me`: the key's workspace as Apify's user (what integrations
/// call to check a token).
#[utoipa::path(get, path = "/v2/users/me", tag = "apify",
    description = "Apify-compatible: the account the token belongs to, here the key's workspace (`id`, `username` and `profile.name` its id and name, `plan.id` its plan).",
    responses((status = 200, description = "`{\"data\": User}`"), (status = 401, body = agentbase_api_types::ErrorResponse)))]
pub async fn me(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    let ws = (state.app.accounts().workspace(&p.workspace_id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(data(apify::User {
        id: ws.id,
        username: ws.name.clone(),
        profile: apify::UserProfile { name: ws.name },
        plan: apify::UserPlan {
            id: ws.plan.as_str().to_owned(),
        },
    }))
}

/// `GET /v2/actor-runs/{runId}/dataset` and `/v2/datasets/{id}`: the Dataset object.
#[utoipa::path(get, path = "/v2/datasets/{datasetId}", tag = "apify",
    description = "Apify-compatible: the Dataset object (also /v2/actor-runs/{runId}/dataset).",
    params(("datasetId" = String, Path)),
    responses((status = 200, description = "As Apify answers"), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn dataset(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let run = state.app.crawl_runs().dataset_run(&p, &id).await?;
    Ok(data(dataset_dto(&run, &origin(&headers))))
}

/// `DELETE /v2/datasets/{datasetId}` (also the run's `…/dataset`).
#[utoipa::path(delete, path = "/v2/datasets/{datasetId}", tag = "apify",
    description = "Apify-compatible: deletes the dataset's items; the dataset then reads as gone (404) while its run stays. The dataset of a run still going is 409 (abort the run first).",
    params(("datasetId" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = agentbase_api_types::ErrorResponse),
              (status = 409, body = agentbase_api_types::ErrorResponse)))]
pub async fn delete_dataset(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.app.crawl_runs().delete_dataset(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /v2/actor-runs/{runId}/dataset`.
pub async fn delete_run_dataset(
    state: State<AppState>,
    p: Extension<Principal>,
    RunRef(id): RunRef,
) -> Result<Response, ApiError> {
    delete_dataset(state, p, Path(id)).await
}

/// `GET /v2/actor-runs/{runId}/dataset`: the run's Dataset object.
pub async fn run_dataset(
    state: State<AppState>,
    p: Extension<Principal>,
    RunRef(id): RunRef,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    dataset(state, p, Path(id), headers).await
}

/// `stream`: whether to follow the log until the run ends.
pub struct LogQuery {
    stream: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for LogQuery {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        Ok(LogQuery {
            stream: truthy(q.get("stream")),
        })
    }
}

/// `GET /v2/actor-runs/{runId}/log` and `/v2/logs/{runId}`: the run's log as text.
/// With `stream=1` the response stays open and lines are sent as they are
/// written, until the run ends (what the clients' log redirection reads).
#[utoipa::path(get, path = "/v2/actor-runs/{runId}/log", tag = "apify",
    description = "Apify-compatible: the run's log as text (also /v2/logs/{runId}); `stream=1` keeps it open until the run ends.",
    params(("runId" = String, Path),
           ("stream" = Option<String>, Query, description = "`1`, `true` or `yes` follow the log until the run ends; any other value does not (as Apify)")),
    responses((status = 200, description = "As Apify answers"), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn log(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    RunRef(id): RunRef,
    q: LogQuery,
) -> Result<Response, ApiError> {
    let log = state.app.crawl_runs().log(&p, &id, q.stream).await?;
    let first = log_text(&log.lines);
    let mut res = match log.more {
        Some(more) => {
            let more = more.map(|lines| Ok::<_, std::io::Error>(log_text(&lines)));
            let body = futures_util::stream::once(async { Ok(first) }).chain(more);
            axum::body::Body::from_stream(body).into_response()
        }
        None => first.into_response(),
    };
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(match log.place {
        Some(place) => held_until_sent(res, place),
        None => res,
    })
}

fn log_text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn record_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "RECORD_NOT_FOUND",
        "Record was not found",
    )
}

/// `GET /v2/key-value-stores/{storeId}`: the store object.
#[utoipa::path(get, path = "/v2/key-value-stores/{storeId}", tag = "apify",
    description = "Apify-compatible: a run's default key-value store (also /v2/actor-runs/{runId}/key-value-store).",
    params(("storeId" = String, Path)),
    responses((status = 200, description = "As Apify answers"), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn kv_store(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(store_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (run, _) = state.app.crawl_runs().kv_keys(&p, &store_id).await?;
    Ok(data(kv_store_dto(&run, &origin(&headers))))
}

/// `GET /v2/actor-runs/{runId}/key-value-store`.
pub async fn run_kv_store(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    RunRef(run_id): RunRef,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let run = state.app.crawl_runs().kv_run(&p, &run_id).await?;
    Ok(data(kv_store_dto(&run, &origin(&headers))))
}

/// `DELETE /v2/key-value-stores/{storeId}` (also the run's `…/key-value-store`).
#[utoipa::path(delete, path = "/v2/key-value-stores/{storeId}", tag = "apify",
    description = "Apify-compatible: deletes the store's records (`INPUT` too); the store then reads as gone (404) while its run stays.",
    params(("storeId" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn delete_kv_store(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(store_id): Path<String>,
) -> Result<Response, ApiError> {
    state
        .app
        .crawl_runs()
        .delete_kv_store(&p, &store_id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /v2/actor-runs/{runId}/key-value-store`.
pub async fn delete_run_kv_store(
    state: State<AppState>,
    p: Extension<Principal>,
    RunRef(run_id): RunRef,
) -> Result<Response, ApiError> {
    delete_kv_store(state, p, Path(run_id)).await
}

/// `GET /v2/key-value-stores/{storeId}/keys`.
#[utoipa::path(get, path = "/v2/key-value-stores/{storeId}/keys", tag = "apify",
    description = "Apify-compatible: the store's keys.",
    params(("storeId" = String, Path)),
    responses((status = 200, description = "As Apify answers"), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn kv_keys(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(store_id): Path<String>,
) -> Result<Response, ApiError> {
    let (_, keys) = state.app.crawl_runs().kv_keys(&p, &store_id).await?;
    Ok(data(kv_keys_dto(keys)))
}

/// `GET /v2/key-value-stores/{storeId}/records/{key}`: the record as stored.
#[utoipa::path(get, path = "/v2/key-value-stores/{storeId}/records/{key}", tag = "apify",
    description = "Apify-compatible: a record as stored (`INPUT` is the run's input; also /v2/actor-runs/{runId}/key-value-store/records/{key}).",
    params(("storeId" = String, Path), ("key" = String, Path)),
    responses((status = 200, description = "As Apify answers"), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn kv_record(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((store_id, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let record = state
        .app
        .crawl_runs()
        .kv_record(&p, &store_id, &key)
        .await?;
    record_response(record)
}

/// A record as stored, with its content type; a missing one is Apify's 404.
fn record_response(record: Option<(String, String)>) -> Result<Response, ApiError> {
    let (content_type, value) = record.ok_or_else(record_not_found)?;
    let mut res = value.into_response();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        res.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    Ok(res)
}

/// `PUT /v2/key-value-stores/{storeId}/records/{key}`: stores the body as sent.
#[utoipa::path(put, path = "/v2/key-value-stores/{storeId}/records/{key}", tag = "apify",
    description = "Apify-compatible: stores the body as a record.",
    params(("storeId" = String, Path), ("key" = String, Path)),
    responses((status = 201, description = "As Apify answers"), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn put_kv_record(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((store_id, key)): Path<(String, String)>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    let value = std::str::from_utf8(&body)
        .map_err(|_| ApiError::invalid_field("body", "records are stored as UTF-8 text"))?;
    state
        .app
        .crawl_runs()
        .put_kv_record(&p, &store_id, &key, content_type, value)
        .await?;
    Ok(StatusCode::CREATED.into_response())
}

/// `DELETE /v2/key-value-stores/{storeId}/records/{key}`.
#[utoipa::path(delete, path = "/v2/key-value-stores/{storeId}/records/{key}", tag = "apify",
    description = "Apify-compatible: deletes a record (how a workspace at its key-value storage limit makes room).",
    params(("storeId" = String, Path), ("key" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn delete_kv_record(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((store_id, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let deleted = state
        .app
        .crawl_runs()
        .delete_kv_record(&p, &store_id, &key)
        .await?;
    if !deleted {
        return Err(record_not_found());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v2/actor-runs/{runId}/key-value-store/keys`.
pub async fn run_kv_keys(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    RunRef(run_id): RunRef,
) -> Result<Response, ApiError> {
    let runs = state.app.crawl_runs();
    let run = runs.run(&p, &run_id, Duration::ZERO).await?;
    let (_, keys) = runs.kv_keys(&p, &run.kv_store_id).await?;
    Ok(data(kv_keys_dto(keys)))
}

/// `GET /v2/actor-runs/{runId}/key-value-store/records/{key}`.
pub async fn run_kv_record(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    RunRef(run_id): RunRef,
    RecordKey(key): RecordKey,
) -> Result<Response, ApiError> {
    let record = state
        .app
        .crawl_runs()
        .run_kv_record(&p, &run_id, &key)
        .await?;
    record_response(record)
}

/// The `key` of a record's path.
pub struct RecordKey(String);

impl<S: Send + Sync> FromRequestParts<S> for RecordKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found())?;
        let key = params.iter().find(|(name, _)| *name == "key");
        key.map(|(_, v)| RecordKey(v.to_owned()))
            .ok_or_else(ApiError::not_found)
    }
}

/// A list's `offset`, `limit` (at most 1,000, the default, which 0 also asks for)
/// and `desc`, as Apify's list endpoints take them.
pub struct PageQuery {
    pub offset: i64,
    pub limit: i64,
    pub desc: bool,
}

impl PageQuery {
    fn of(q: &QueryMap) -> Result<PageQuery, ApiError> {
        let int = |key: &str| match q.get(key) {
            None => Ok(0),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| ApiError::invalid_field(key, "must be a non-negative integer")),
        };
        Ok(PageQuery {
            offset: int("offset")?,
            limit: match int("limit")? {
                0 => MAX_RUNS_PER_PAGE,
                n => n.min(MAX_RUNS_PER_PAGE),
            },
            desc: truthy(q.get("desc")),
        })
    }

    /// `items` as Apify's page of a list of `total`.
    pub fn page<T: serde::Serialize>(&self, items: Vec<T>, total: i64) -> Response {
        data(apify::Page {
            total,
            offset: self.offset,
            limit: self.limit,
            desc: self.desc,
            count: items.len(),
            items,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        PageQuery::of(&q)
    }
}

/// A run list's page and which runs it keeps (see [`run_filter`]).
pub struct RunsQuery {
    page: PageQuery,
    filter: RunFilter,
}

impl<S: Send + Sync> FromRequestParts<S> for RunsQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        Ok(RunsQuery {
            page: PageQuery::of(&q)?,
            filter: run_filter(&q)?,
        })
    }
}

#[utoipa::path(get, path = "/v2/actor-runs", tag = "apify",
    description = "Apify-compatible: the workspace's runs, oldest first (`desc` for newest first), without their inputs; `status` keeps those in the given statuses (comma-separated), `startedAfter` and `startedBefore` those started in that span (inclusive).",
    params(("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query, description = "at most 1,000 (the default; 0 asks for it too)"),
           ("desc" = Option<String>, Query, description = "`1`, `true` or `yes` for newest first"),
           ("status" = Option<String>, Query, description = "e.g. `SUCCEEDED` or `SUCCEEDED,FAILED`"),
           ("startedAfter" = Option<String>, Query, description = "a date or an ISO 8601 date-time"),
           ("startedBefore" = Option<String>, Query, description = "a date or an ISO 8601 date-time")),
    responses((status = 200, description = "`{\"data\": {total, offset, limit, desc, count, items}}`"),
              (status = 400, body = agentbase_api_types::ErrorResponse)))]
pub async fn runs(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    q: RunsQuery,
) -> Result<Response, ApiError> {
    let page = &q.page;
    let (runs, total) = state
        .app
        .crawl_runs()
        .runs(&p, &q.filter, page.offset, page.limit, page.desc)
        .await?;
    Ok(page.page(runs.iter().map(run_dto).collect(), total))
}

/// A page of the runs whose storage `dto` shows (those whose `with` storage is
/// left, as `filter` asks), as Apify lists storages: named ones unless `unnamed`
/// is set, and every storage here is a run's default, unnamed one, so without it
/// the list is empty.
async fn storage_list<T: serde::Serialize>(
    state: &AppState,
    p: &Principal,
    q: &QueryMap,
    filter: RunFilter,
    dto: impl Fn(&CrawlRun) -> T,
) -> Result<Response, ApiError> {
    let page = PageQuery::of(q)?;
    if !truthy(q.get("unnamed")) {
        return Ok(page.page(Vec::<T>::new(), 0));
    }
    let runs = state.app.crawl_runs();
    let (runs, total) = (runs.runs(p, &filter, page.offset, page.limit, page.desc)).await?;
    Ok(page.page(runs.iter().map(dto).collect(), total))
}

#[utoipa::path(get, path = "/v2/datasets", tag = "apify",
    description = "Apify-compatible: the workspace's datasets, oldest first (`desc` for newest first). Every dataset here is a run's default one, which Apify calls unnamed: they are listed with `unnamed=1` (without it the list is empty, as on Apify for an account with no named datasets); deleted ones are not.",
    params(("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query, description = "at most 1,000 (the default)"),
           ("desc" = Option<String>, Query), ("unnamed" = Option<String>, Query)),
    responses((status = 200, description = "`{\"data\": {total, offset, limit, desc, count, items}}`"),
              (status = 400, body = agentbase_api_types::ErrorResponse)))]
pub async fn datasets(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    q: QueryMap,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let base = origin(&headers);
    let filter = RunFilter {
        with_dataset: true,
        ..RunFilter::default()
    };
    // Apify's list items have a name, which its Python client requires to be
    // text: an unnamed dataset's is empty.
    let dto = |r: &CrawlRun| apify::Dataset {
        name: Some(String::new()),
        ..dataset_dto(r, &base)
    };
    storage_list(&state, &p, &q, filter, dto).await
}

#[utoipa::path(get, path = "/v2/key-value-stores", tag = "apify",
    description = "Apify-compatible: the workspace's key-value stores, as `GET /v2/datasets` lists datasets (`unnamed=1` lists the runs' default stores).",
    params(("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query, description = "at most 1,000 (the default)"),
           ("desc" = Option<String>, Query), ("unnamed" = Option<String>, Query)),
    responses((status = 200, description = "`{\"data\": {total, offset, limit, desc, count, items}}`"),
              (status = 400, body = agentbase_api_types::ErrorResponse)))]
pub async fn kv_stores(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    q: QueryMap,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let base = origin(&headers);
    let filter = RunFilter {
        with_kv_store: true,
        ..RunFilter::default()
    };
    let dto = |r: &CrawlRun| kv_store_dto(r, &base);
    storage_list(&state, &p, &q, filter, dto).await
}

#[utoipa::path(get, path = "/v2/actors/{actorId}/runs", tag = "apify",
    description = "Apify-compatible: the crawler's runs in the workspace (also /v2/acts/...), as `GET /v2/actor-runs` lists them. A run is also at `/v2/actors/{actorId}/runs/{runId}`, and `last` names the newest (with `status`, the newest in those statuses), with its `abort`, `dataset`, `dataset/items`, `log`, `key-value-store`, `key-value-store/keys` and `key-value-store/records/{key}`.",
    params(("actorId" = String, Path), ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query),
           ("desc" = Option<String>, Query), ("status" = Option<String>, Query),
           ("startedAfter" = Option<String>, Query), ("startedBefore" = Option<String>, Query)),
    responses((status = 200, description = "`{\"data\": {total, offset, limit, desc, count, items}}`"),
              (status = 400, body = agentbase_api_types::ErrorResponse), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn actor_runs(
    state: State<AppState>,
    p: Extension<Principal>,
    Path(actor_id): Path<String>,
    q: RunsQuery,
) -> Result<Response, ApiError> {
    known_actor(&actor_id)?;
    runs(state, p, q).await
}

/// A synchronous run's end as Apify answers it: 408 `run-timeout-exceeded` while
/// it goes on, 400 `run-failed` when it ended other than SUCCEEDED.
fn sync_outcome(run: &CrawlRun, waited_secs: u64) -> Result<(), ApiError> {
    if !run.status.is_terminal() {
        return Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            codes::RUN_TIMEOUT_EXCEEDED,
            format!(
                "Actor run exceeded timeout of {waited_secs} seconds for this API endpoint (run ID: {}; it goes on)",
                run.id
            ),
        ));
    }
    if run.status != RunStatus::Succeeded {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::RUN_FAILED,
            format!(
                "Actor run did not succeed (run ID: {}, status: {})",
                run.id,
                run.status.as_str()
            ),
        ));
    }
    Ok(())
}

#[utoipa::path(post, path = "/v2/actors/{actorId}/run-sync-get-dataset-items", tag = "apify",
    description = "Apify-compatible (also /v2/acts/..., and GET without input): starts a run with the body as its input, waits for it (`crawler.sync_wait_secs`, 300 s by default) and answers with its dataset items as `GET /v2/datasets/{id}/items` does (`format`, `clean`, `offset`, `limit`, `fields`, `omit`, `desc`). A run that fails gets 400 `run-failed`; one still going when the wait ends gets 408 `run-timeout-exceeded` and goes on.",
    params(("actorId" = String, Path), ("timeout" = Option<f64>, Query, minimum = 0), ("maxItems" = Option<f64>, Query, minimum = 1),
           ("format" = Option<String>, Query), ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query),
           ("clean" = Option<String>, Query), ("fields" = Option<String>, Query), ("omit" = Option<String>, Query),
           ("desc" = Option<String>, Query)),
    responses((status = 201, description = "The items, with X-Apify-Pagination-* headers"),
              (status = 400, body = agentbase_api_types::ErrorResponse), (status = 404, body = agentbase_api_types::ErrorResponse),
              (status = 408, body = agentbase_api_types::ErrorResponse), (status = 429, body = agentbase_api_types::ErrorResponse)))]
pub async fn run_sync_items(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(actor_id): Path<String>,
    q: Result<StartQuery, ApiError>,
    items_query: Result<ItemsQuery, ApiError>,
    ActorInput(input): ActorInput,
) -> Result<Response, ApiError> {
    let (q, items_query) = (q?, items_query?);
    let runs = state.app.crawl_runs();
    let run = runs.run_sync(&p, &actor_id, input, q.options).await?;
    sync_outcome(&run, state.app.settings().crawler.sync_wait_secs)?;
    let mut res = items(State(state), Extension(p), Path(run.id), items_query).await?;
    *res.status_mut() = StatusCode::CREATED;
    Ok(res)
}

/// `outputRecordKey`: the record `run-sync` answers with (`OUTPUT` by default).
pub struct OutputKey(String);

impl<S: Send + Sync> FromRequestParts<S> for OutputKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        Ok(OutputKey(
            q.get("outputRecordKey").unwrap_or("OUTPUT").to_owned(),
        ))
    }
}

#[utoipa::path(post, path = "/v2/actors/{actorId}/run-sync", tag = "apify",
    description = "Apify-compatible (also /v2/acts/..., and GET without input): starts a run, waits for it as run-sync-get-dataset-items does, and answers with the record `outputRecordKey` (default `OUTPUT`) of its default key-value store. The crawler writes its pages to the dataset and no `OUTPUT`, so that answer is empty unless the record was written, as on Apify.",
    params(("actorId" = String, Path), ("timeout" = Option<f64>, Query, minimum = 0), ("maxItems" = Option<f64>, Query, minimum = 1),
           ("outputRecordKey" = Option<String>, Query)),
    responses((status = 201, description = "The record as stored, or nothing"),
              (status = 400, body = agentbase_api_types::ErrorResponse), (status = 404, body = agentbase_api_types::ErrorResponse),
              (status = 408, body = agentbase_api_types::ErrorResponse), (status = 429, body = agentbase_api_types::ErrorResponse)))]
pub async fn run_sync(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(actor_id): Path<String>,
    q: Result<StartQuery, ApiError>,
    OutputKey(key): OutputKey,
    ActorInput(input): ActorInput,
) -> Result<Response, ApiError> {
    let q = q?;
    let runs = state.app.crawl_runs();
    let run = runs.run_sync(&p, &actor_id, input, q.options).await?;
    sync_outcome(&run, state.app.settings().crawler.sync_wait_secs)?;
    let mut res = match runs.kv_record(&p, &run.kv_store_id, &key).await? {
        Some(record) => record_response(Some(record))?,
        None => ().into_response(),
    };
    *res.status_mut() = StatusCode::CREATED;
    Ok(res)
}

/// Apify clients read `error.type` (`record-not-found`, …): the envelope gains it,
/// derived from the code, so both kinds of client understand an error.
pub async fn apify_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(req).await;
    if !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return ApiError::internal().into_response();
    };
    let reshaped = with_error_type(&bytes);
    let body = match reshaped {
        Some(b) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            axum::body::Body::from(b)
        }
        None => axum::body::Body::from(bytes),
    };
    Response::from_parts(parts, body)
}

/// The envelope with `error.type` added (from `error.code`), when it is one.
fn with_error_type(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut v = serde_json::from_slice::<Value>(bytes).ok()?;
    let code = v["error"]["code"].as_str()?.to_owned();
    let kind = match code.as_str() {
        "RESOURCE_NOT_FOUND" => "record-not-found".to_owned(),
        // What Apify's clients wait on with `wait_for_resources`.
        "CRAWL_RUNS_LIMIT_REACHED" => "concurrent-runs-limit-exceeded".to_owned(),
        other => other.to_ascii_lowercase().replace('_', "-"),
    };
    v["error"]["type"] = Value::String(kind);
    serde_json::to_vec(&v).ok()
}

#[cfg(test)]
mod tests {
    use agentbase_core::time_fmt::iso8601;

    use super::*;

    /// The typed objects serialise byte for byte as the `json!` maps they replace.
    #[tokio::test]
    async fn typed_objects_match_the_maps_they_replaced() {
        let run = CrawlRun {
            id: "r1".into(),
            workspace_id: "w1".into(),
            actor_id: "a1".into(),
            status: agentbase_core::crawl_run::RunStatus::Succeeded,
            status_message: None,
            input: Value::Null,
            dataset_id: "d1".into(),
            timeout_secs: 60,
            pages_done: 2,
            pages_failed: 0,
            items: 2,
            started_at: 1_000,
            finished_at: Some(5_000),
            kv_store_id: "k1".into(),
            webhooks: Vec::new(),
            dataset_deleted_at: None,
            kv_store_deleted_at: None,
        };
        let (base, started, changed) = ("http://h", iso8601(1_000), iso8601(5_000));
        async fn body(r: Response) -> String {
            let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await;
            String::from_utf8(bytes.unwrap().to_vec()).unwrap()
        }
        let epoch = iso8601(0);
        let actor = json!({"data": {
            "id": agentbase_service::crawl_runs::ACTOR_ID, "userId": "w1",
            "name": agentbase_service::crawl_runs::ACTOR_NAME, "username": "apify",
            "title": "Website Content Crawler", "isPublic": true, "createdAt": epoch,
            "modifiedAt": epoch, "stats": {"totalRuns": 0}, "versions": [],
            "defaultRunOptions": {"build": "latest", "timeoutSecs": 3600, "memoryMbytes": 1024},
        }});
        assert_eq!(body(data(actor_dto("w1"))).await, actor.to_string());
        let dataset = json!({"data": {
            "id": "d1", "name": null, "userId": "w1", "createdAt": started,
            "modifiedAt": changed, "accessedAt": changed, "itemCount": 2, "cleanItemCount": 2,
            "actId": "a1", "actRunId": "r1", "consoleUrl": "http://h/v2/datasets/d1",
            "itemsPublicUrl": "http://h/v2/datasets/d1/items",
        }});
        assert_eq!(
            body(data(dataset_dto(&run, base))).await,
            dataset.to_string()
        );
        let store = json!({"data": {
            "id": "k1", "name": null, "userId": "w1", "createdAt": started,
            "modifiedAt": changed, "accessedAt": changed, "actId": "a1", "actRunId": "r1",
            "consoleUrl": "http://h/v2/key-value-stores/k1",
            "keysPublicUrl": "http://h/v2/key-value-stores/k1/keys",
            "recordsPublicUrl": "http://h/v2/key-value-stores/k1/records",
        }});
        assert_eq!(
            body(data(kv_store_dto(&run, base))).await,
            store.to_string()
        );
        let keys = json!({"data": {
            "items": [{"key": "INPUT", "size": 4}], "count": 1, "limit": 1000,
            "exclusiveStartKey": null, "isTruncated": false, "nextExclusiveStartKey": null,
        }});
        let listed = kv_keys_dto(vec![("INPUT".into(), 4)]);
        assert_eq!(body(data(listed)).await, keys.to_string());
    }
}
