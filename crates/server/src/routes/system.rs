//! Unauthenticated endpoints: health, the OpenAPI document, metrics, and the
//! envelope answers for unknown routes and methods.

use agentbase_api_types::{Health, codes};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

/// Liveness; no authentication.
#[utoipa::path(get, path = "/api/v2/health", tag = "system",
    responses((status = 200, description = "API is healthy", body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        timestamp: state.app.now() / 1000,
    })
}

pub async fn openapi(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.clone(),
    )
        .into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    if !state.app.settings().server.metrics {
        return ApiError::not_found().into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        "This method is not allowed on this route",
    )
}
