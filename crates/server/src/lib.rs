//! The HTTP layer. The only crate that knows axum, status codes and the wire
//! format: it maps requests onto `agentbase-service` and results onto the Chatbase
//! envelopes.

#![forbid(unsafe_code)]

pub mod allow;
pub mod dashboard;
pub mod decompress;
pub mod dto;
pub mod error;
pub mod extract;
pub mod layers;
pub mod listen;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod sse;
mod strict;
pub mod widget;
pub mod widget_live;

use std::future::Future;
use std::sync::Arc;

use agentbase_service::App;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post, put};
use bytes::Bytes;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::error::ApiError;
pub use crate::listen::ConnectionLimits;
use crate::metrics::Metrics;

/// What every handler and middleware gets. One `Arc`: axum clones the state for
/// each middleware layer and handler a request passes through, and every clone and
/// drop of a shared counter is an atomic operation on a cache line the cores contend
/// for. With three counters (two `Arc`s and the document's `Bytes`), cloning and
/// dropping the state took about 13% of the server's CPU under `bench/api.sh`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub app: Arc<App>,
    pub metrics: Metrics,
    /// The OpenAPI document, rendered once.
    pub openapi: Bytes,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The v2 helpdesk operations and the handoff routes (issue 16).
fn helpdesk_routes() -> Router<AppState> {
    use routes::helpdesk;
    Router::new()
        .route(
            "/api/v2/agents/{agentId}/helpdesk/ticket-statuses",
            get(helpdesk::statuses),
        )
        .route(
            "/api/v2/agents/{agentId}/helpdesk/teams",
            get(helpdesk::teams),
        )
        .route(
            "/api/v2/agents/{agentId}/helpdesk/tickets",
            get(helpdesk::list).post(helpdesk::create),
        )
        .route(
            "/api/v2/agents/{agentId}/helpdesk/tickets/search",
            post(helpdesk::search),
        )
        .route(
            "/api/v2/agents/{agentId}/helpdesk/tickets/{ticketNumber}",
            get(helpdesk::get).patch(helpdesk::update),
        )
        .route(
            "/api/v2/agents/{agentId}/helpdesk/tickets/{ticketNumber}/messages",
            get(helpdesk::messages).post(helpdesk::reply),
        )
        .route(
            "/api/v2/agents/{agentId}/conversations/{conversationId}/take-over",
            post(helpdesk::take_over),
        )
        .route(
            "/api/v2/agents/{agentId}/conversations/{conversationId}/hand-back",
            post(helpdesk::hand_back),
        )
}

pub fn router(app: Arc<App>) -> Router {
    app.crawl_runs().set_run_resource(dto::apify::run_value);
    let body_limit = app.settings().server.body_limit_bytes;
    let body_timeout = std::time::Duration::from_secs(app.settings().server.body_timeout_secs);
    let state = AppState(Arc::new(Shared {
        app,
        metrics: Metrics::default(),
        openapi: Bytes::from(openapi::document_json()),
    }));
    use routes::{apify, system};
    let authenticate = || from_fn_with_state(state.clone(), layers::authenticate);
    let inert = || axum::middleware::from_fn(layers::inert_content);
    let utf8_path = || axum::middleware::from_fn(layers::utf8_path);
    let api = api_routes()
        .merge(helpdesk_routes())
        .route_layer(utf8_path())
        .route_layer(authenticate())
        .route_layer(inert());
    let v1 = v1_routes()
        .route_layer(utf8_path())
        .route_layer(authenticate())
        .route_layer(axum::middleware::from_fn(layers::v1_errors))
        .route_layer(inert());
    let apify = apify_routes()
        .route_layer(utf8_path())
        .route_layer(authenticate())
        .route_layer(axum::middleware::from_fn(layers::apify_token))
        .route_layer(axum::middleware::from_fn(apify::apify_errors))
        .route_layer(inert());
    let routes = api
        .merge(v1)
        .merge(apify)
        .merge(public_routes())
        .merge(dashboard::router().route_layer(utf8_path()))
        .merge(widget_routes().route_layer(utf8_path()))
        .fallback(system::not_found)
        .method_not_allowed_fallback(system::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(from_fn_with_state(state.clone(), decompress::decompress))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("handler panicked");
            ApiError::internal().into_response()
        }))
        .layer(from_fn_with_state(state.clone(), layers::limits))
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .layer(from_fn_with_state(state.clone(), layers::request_context))
        .with_state(state);
    // `Allow` is added by each route's method router after its layers ran, so the
    // middleware that completes it wraps the whole router.
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn(allow::allow))
}

/// The v2 API (key-authenticated by the caller's layer).
fn api_routes() -> Router<AppState> {
    use routes::{agents, chat, contacts, conversations, leads, webhooks};
    Router::new()
        .merge(knowledge_routes())
        .route("/api/v2/agents", get(agents::list).post(agents::create))
        .route(
            "/api/v2/agents/{agentId}",
            get(agents::get).put(agents::update).delete(agents::delete),
        )
        .route(
            "/api/v2/agents/{agentId}/actions",
            get(agents::get_actions).put(agents::put_actions),
        )
        .route("/api/v2/agents/{agentId}/leads/export", get(leads::export))
        .route(
            "/api/v2/agents/{agentId}/identity-verification",
            get(contacts::identity_secret).post(contacts::rotate_identity_secret),
        )
        .route(
            "/api/v2/agents/{agentId}/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/api/v2/agents/{agentId}/webhooks/{webhookId}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(
            "/api/v2/agents/{agentId}/webhooks/{webhookId}/deliveries",
            get(webhooks::deliveries),
        )
        .route(
            "/api/v2/agents/{agentId}/styles",
            put(agents::update_styles),
        )
        .route("/api/v2/agents/{agentId}/clone", post(agents::clone))
        .route(
            "/api/v2/agents/{agentId}/conversations/search",
            get(conversations::search),
        )
        .route("/api/v2/agents/{agentId}/chat", post(chat::chat))
        .route(
            "/api/v2/agents/{agentId}/conversations",
            get(conversations::list),
        )
        .route(
            "/api/v2/agents/{agentId}/conversations/export",
            get(conversations::export),
        )
        .route(
            "/api/v2/agents/{agentId}/conversations/{conversationId}",
            get(conversations::get).patch(conversations::update),
        )
        .route(
            "/api/v2/agents/{agentId}/conversations/{conversationId}/messages",
            get(conversations::messages),
        )
        .route(
            "/api/v2/agents/{agentId}/conversations/{conversationId}/retry",
            post(chat::retry),
        )
        .route(
            "/api/v2/agents/{agentId}/conversations/{conversationId}/tool-result",
            post(chat::tool_result),
        )
        .route(
            "/api/v2/agents/{agentId}/conversations/{conversationId}/messages/{messageId}/feedback",
            patch(conversations::feedback),
        )
        .route(
            "/api/v2/agents/{agentId}/users/{userId}/conversations",
            get(conversations::for_user),
        )
}

/// An agent's knowledge: sources (uploads up to 20 MB), training and search.
fn knowledge_routes() -> Router<AppState> {
    use routes::sources;
    // File uploads may be up to 20 MB (plus the form's framing).
    let upload_limit = DefaultBodyLimit::max(agentbase_core::knowledge::FILE_MAX_BYTES + 64 * 1024);
    Router::new()
        .route(
            "/api/v2/agents/{agentId}/sources",
            get(sources::list).merge(post(sources::create).layer(upload_limit)),
        )
        .route(
            "/api/v2/agents/{agentId}/sources/summary",
            get(sources::summary),
        )
        .route(
            "/api/v2/agents/{agentId}/sources/{sourceId}",
            get(sources::get)
                .delete(sources::delete)
                .merge(put(sources::update).layer(upload_limit)),
        )
        .route(
            "/api/v2/agents/{agentId}/sources/{sourceId}/restore",
            post(sources::restore),
        )
        .route("/api/v2/agents/{agentId}/train", post(sources::train))
        .route(
            "/api/v2/agents/{agentId}/auto-retrain",
            put(sources::auto_retrain),
        )
        .route("/api/v2/agents/{agentId}/training-jobs", get(sources::jobs))
        .route("/api/v2/agents/{agentId}/search", post(sources::search))
}

/// Chatbase's v1 API.
fn v1_routes() -> Router<AppState> {
    use routes::{contacts, v1};
    Router::new()
        .route("/api/v1/chat", post(v1::chat))
        .route("/api/v1/get-conversations", get(v1::get_conversations))
        .route("/api/v1/get-leads", get(v1::get_leads))
        .route(
            "/api/v1/chatbots/{agentId}/contacts",
            get(contacts::list).post(contacts::create),
        )
        .route(
            "/api/v1/chatbots/{agentId}/contacts/{contactId}",
            get(contacts::get)
                .patch(contacts::update)
                .delete(contacts::delete),
        )
        .route(
            "/api/v1/chatbots/{agentId}/custom-attributes",
            get(contacts::attributes).post(contacts::create_attribute),
        )
        .route(
            "/api/v1/chatbots/{agentId}/custom-attributes/{name}",
            put(contacts::update_attribute),
        )
        .route("/api/v1/create-chatbot", post(v1::create_chatbot))
        .route("/api/v1/update-chatbot-data", post(v1::update_chatbot_data))
        .route("/api/v1/get-chatbots", get(v1::get_chatbots))
        .route("/api/v1/delete-chatbot", delete(v1::delete_chatbot))
        .route(
            "/api/v1/update-chatbot-settings",
            post(v1::update_chatbot_settings),
        )
}

/// The Apify API: Apify's clients say `actors`, its docs and older clients `acts`;
/// an actor id is `user~name`, `user/name` (two segments) or the actor's own id.
fn apify_routes() -> Router<AppState> {
    use routes::apify;
    Router::new()
        .route("/v2/acts/{actorId}", get(apify::actor))
        .route(
            "/v2/acts/{actorId}/runs",
            post(apify::start).get(apify::actor_runs),
        )
        .route("/v2/acts/{actorId}/{name}/runs", post(apify::start_named))
        .route(
            "/v2/acts/{actorId}/run-sync-get-dataset-items",
            post(apify::run_sync_items).get(apify::run_sync_items),
        )
        .route(
            "/v2/acts/{actorId}/run-sync",
            post(apify::run_sync).get(apify::run_sync),
        )
        .route("/v2/actors/{actorId}", get(apify::actor))
        .route(
            "/v2/actors/{actorId}/runs",
            post(apify::start).get(apify::actor_runs),
        )
        .route("/v2/actors/{actorId}/{name}/runs", post(apify::start_named))
        .route(
            "/v2/actors/{actorId}/run-sync-get-dataset-items",
            post(apify::run_sync_items).get(apify::run_sync_items),
        )
        .route(
            "/v2/actors/{actorId}/run-sync",
            post(apify::run_sync).get(apify::run_sync),
        )
        .route("/v2/actor-runs", get(apify::runs))
        .route("/v2/users/me", get(apify::me))
        .route("/v2/logs/{runId}", get(apify::log))
        .route("/v2/key-value-stores", get(apify::kv_stores))
        .route("/v2/datasets", get(apify::datasets))
        .route(
            "/v2/key-value-stores/{storeId}",
            get(apify::kv_store).delete(apify::delete_kv_store),
        )
        .route("/v2/key-value-stores/{storeId}/keys", get(apify::kv_keys))
        .route(
            "/v2/key-value-stores/{storeId}/records/{key}",
            get(apify::kv_record)
                .put(apify::put_kv_record)
                .delete(apify::delete_kv_record),
        )
        .route(
            "/v2/datasets/{datasetId}",
            get(apify::dataset).delete(apify::delete_dataset),
        )
        .route("/v2/datasets/{datasetId}/items", get(apify::items))
        .merge(apify_run_routes())
        .merge(apify_webhook_routes())
}

/// Apify's persistent webhooks and the dispatches of every run webhook.
fn apify_webhook_routes() -> Router<AppState> {
    use routes::apify_webhooks as hooks;
    Router::new()
        .route("/v2/webhooks", get(hooks::list).post(hooks::create))
        .route(
            "/v2/webhooks/{webhookId}",
            get(hooks::get).put(hooks::update).delete(hooks::delete),
        )
        .route("/v2/webhooks/{webhookId}/test", post(hooks::test))
        .route(
            "/v2/webhooks/{webhookId}/dispatches",
            get(hooks::webhook_dispatches),
        )
        .route("/v2/webhook-dispatches", get(hooks::dispatches))
        .route("/v2/webhook-dispatches/{dispatchId}", get(hooks::dispatch))
        .route("/v2/acts/{actorId}/webhooks", get(hooks::actor_webhooks))
        .route("/v2/actors/{actorId}/webhooks", get(hooks::actor_webhooks))
}

/// A run and its storages, at `/v2/actor-runs/{runId}/…` and, under the actor, at
/// `/v2/acts/{actorId}/runs/{runId}/…`, where `last` names the newest (`RunRef`).
fn apify_run_routes() -> Router<AppState> {
    use routes::apify;
    Router::new()
        .route(
            "/v2/actor-runs/{runId}",
            get(apify::get).delete(apify::delete_run),
        )
        .route("/v2/actor-runs/{runId}/abort", post(apify::abort))
        .route(
            "/v2/actor-runs/{runId}/dataset",
            get(apify::run_dataset).delete(apify::delete_run_dataset),
        )
        .route(
            "/v2/actor-runs/{runId}/dataset/items",
            get(apify::run_items),
        )
        .route("/v2/actor-runs/{runId}/log", get(apify::log))
        .route(
            "/v2/actor-runs/{runId}/key-value-store",
            get(apify::run_kv_store).delete(apify::delete_run_kv_store),
        )
        .route(
            "/v2/actor-runs/{runId}/key-value-store/keys",
            get(apify::run_kv_keys),
        )
        .route(
            "/v2/actor-runs/{runId}/key-value-store/records/{key}",
            get(apify::run_kv_record),
        )
        .route(
            "/v2/acts/{actorId}/runs/{runId}",
            get(apify::get).delete(apify::delete_run),
        )
        .route("/v2/acts/{actorId}/runs/{runId}/abort", post(apify::abort))
        .route(
            "/v2/acts/{actorId}/runs/{runId}/dataset",
            get(apify::run_dataset).delete(apify::delete_run_dataset),
        )
        .route(
            "/v2/acts/{actorId}/runs/{runId}/dataset/items",
            get(apify::run_items),
        )
        .route("/v2/acts/{actorId}/runs/{runId}/log", get(apify::log))
        .route(
            "/v2/acts/{actorId}/runs/{runId}/key-value-store",
            get(apify::run_kv_store).delete(apify::delete_run_kv_store),
        )
        .route(
            "/v2/acts/{actorId}/runs/{runId}/key-value-store/keys",
            get(apify::run_kv_keys),
        )
        .route(
            "/v2/acts/{actorId}/runs/{runId}/key-value-store/records/{key}",
            get(apify::run_kv_record),
        )
        .route(
            "/v2/actors/{actorId}/runs/{runId}",
            get(apify::get).delete(apify::delete_run),
        )
        .route(
            "/v2/actors/{actorId}/runs/{runId}/abort",
            post(apify::abort),
        )
        .route(
            "/v2/actors/{actorId}/runs/{runId}/dataset",
            get(apify::run_dataset).delete(apify::delete_run_dataset),
        )
        .route(
            "/v2/actors/{actorId}/runs/{runId}/dataset/items",
            get(apify::run_items),
        )
        .route("/v2/actors/{actorId}/runs/{runId}/log", get(apify::log))
        .route(
            "/v2/actors/{actorId}/runs/{runId}/key-value-store",
            get(apify::run_kv_store).delete(apify::delete_run_kv_store),
        )
        .route(
            "/v2/actors/{actorId}/runs/{runId}/key-value-store/keys",
            get(apify::run_kv_keys),
        )
        .route(
            "/v2/actors/{actorId}/runs/{runId}/key-value-store/records/{key}",
            get(apify::run_kv_record),
        )
}

/// The widget's script and its public, CORS-checked endpoints.
fn widget_routes() -> Router<AppState> {
    Router::new()
        .route("/widget.js", get(widget::script))
        .route("/embed.min.js", get(widget::script))
        .route(
            "/widget/v1/agents/{agentId}/config",
            get(widget::config).options(widget::preflight),
        )
        .route(
            "/widget/v1/agents/{agentId}/chat",
            post(widget::chat).options(widget::preflight),
        )
        .route(
            "/widget/v1/agents/{agentId}/leads",
            post(widget::leads).options(widget::preflight),
        )
        .route(
            "/widget/v1/agents/{agentId}/handoff",
            post(widget_live::handoff).options(widget::preflight),
        )
        .route("/widget/v1/agents/{agentId}/live", get(widget_live::live))
}

/// Health, the OpenAPI document and metrics: no key.
fn public_routes() -> Router<AppState> {
    use routes::system;
    Router::new()
        .route("/api/v2/health", get(system::health))
        .route("/api/v2/openapi.json", get(system::openapi))
        .route("/metrics", get(system::metrics))
}

/// Serves the API until `shutdown` resolves, then lets in-flight requests finish
/// for up to `server.shutdown_grace_secs`.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ConnectionLimits::from_settings(&app.settings().server);
    serve_router(listener, router(app), limits, shutdown).await
}

/// [`serve`] for any router: stops accepting when `shutdown` resolves and returns
/// once in-flight requests are done or `limits.grace` has passed, whichever is
/// first.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listen::serve_connections(listener, router, limits, shutdown).await
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
