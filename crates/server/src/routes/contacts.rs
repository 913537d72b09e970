//! Chatbase's v1 contacts API: `/api/v1/chatbots/{agentId}/contacts` (list with
//! `page`/`per_page`, bulk create, get, update, delete) and `…/custom-attributes`
//! (list, create, update by name); errors in v1's envelope with Chatbase's
//! messages and `issues`. Also agentbase's v2 identity-verification secret.

use std::collections::BTreeMap;

use agentbase_api_types::contacts as wire;
use agentbase_api_types::{ErrorResponse, codes, v1::V1Error};
use agentbase_core::{Error, Resource};
use agentbase_service::Principal;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::{Extension, Json};
use serde_json::Value;

use crate::AppState;
use crate::dto::contacts::{attribute, contact, contacts_dto, secret};
use crate::error::ApiError;
use crate::extract::{AppJson, QueryMap};

use crate::dto::contacts::SUCCESS;

/// The service's errors with the messages Chatbase's contacts API uses.
fn v1_error(e: Error) -> ApiError {
    match e {
        Error::NotFound(Resource::Agent) => ApiError::new(
            StatusCode::NOT_FOUND,
            codes::AGENT_NOT_FOUND,
            "Chatbot not found",
        ),
        Error::Invalid(details) => invalid("Invalid request body", details),
        e => e.into(),
    }
}

fn invalid(message: &str, details: BTreeMap<String, String>) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        codes::VALIDATION_INVALID_BODY,
        message,
    )
    .with_details(details)
}

/// `page` (from 1) and `per_page` (10–1000, default 100), each problem named.
pub struct ContactPaging {
    page: u32,
    per_page: u32,
}

impl<S: Send + Sync> FromRequestParts<S> for ContactPaging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        paging(&q)
    }
}

fn paging(q: &QueryMap) -> Result<ContactPaging, ApiError> {
    let mut details = BTreeMap::new();
    let mut number = |key: &str, default: u32, min: u32, max: u32| match q.get(key) {
        None => default,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n < i64::from(min) => {
                details.insert(
                    key.to_owned(),
                    format!("Number must be greater than or equal to {min}"),
                );
                default
            }
            Ok(n) if n > i64::from(max) => {
                details.insert(
                    key.to_owned(),
                    format!("Number must be less than or equal to {max}"),
                );
                default
            }
            Ok(n) => n as u32,
            Err(_) => {
                details.insert(key.to_owned(), "Expected integer".to_owned());
                default
            }
        },
    };
    let page = number("page", 1, 1, u32::MAX);
    let per_page = number("per_page", 100, 10, 1000);
    if details.is_empty() {
        Ok(ContactPaging { page, per_page })
    } else {
        Err(invalid("Invalid request parameters", details))
    }
}

#[utoipa::path(get, path = "/api/v1/chatbots/{agentId}/contacts", tag = "v1",
    params(("agentId" = String, Path, description = "The chatbot's id"),
           ("page" = Option<u32>, Query, description = "From 1"),
           ("per_page" = Option<u32>, Query, description = "10–1000, default 100")),
    responses((status = 200, body = wire::V1ContactsResponse), (status = 400, body = V1Error),
              (status = 404, body = V1Error)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    q: ContactPaging,
) -> Result<Json<wire::V1ContactsResponse>, ApiError> {
    let found = state
        .app
        .contacts()
        .list(&p.workspace_id, &agent_id, q.page, q.per_page);
    let result = found.await.map_err(|e| match e {
        Error::Invalid(d) => invalid("Invalid request parameters", d),
        e => v1_error(e),
    })?;
    Ok(Json(contacts_dto(result)))
}

#[utoipa::path(post, path = "/api/v1/chatbots/{agentId}/contacts", tag = "v1",
    params(("agentId" = String, Path, description = "The chatbot's id")), request_body = wire::V1CreateContacts,
    responses((status = 200, body = wire::V1ContactsCreated), (status = 400, body = V1Error),
              (status = 404, body = V1Error), (status = 409, body = V1Error)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    AppJson(body): AppJson<Value>,
) -> Result<Json<wire::V1ContactsCreated>, ApiError> {
    let users = match body.get("users") {
        Some(Value::Array(users)) => users,
        None => return Err(invalid_field("users", "Required")),
        Some(_) => return Err(invalid_field("users", "Expected array")),
    };
    let made = state
        .app
        .contacts()
        .create_contacts(&p.workspace_id, &agent_id, users)
        .await
        .map_err(v1_error)?;
    Ok(Json(wire::V1ContactsCreated {
        message: SUCCESS.into(),
        data: made.into_iter().map(contact).collect(),
    }))
}

fn invalid_field(field: &str, message: &str) -> ApiError {
    invalid(
        "Invalid request body",
        BTreeMap::from([(field.to_owned(), message.to_owned())]),
    )
}

#[utoipa::path(get, path = "/api/v1/chatbots/{agentId}/contacts/{contactId}", tag = "v1",
    params(("agentId" = String, Path, description = "The chatbot's id"),
           ("contactId" = String, Path, description = "The contact's external_id (or its id)")),
    responses((status = 200, body = wire::V1ContactResponse), (status = 404, body = V1Error)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, contact_id)): Path<(String, String)>,
) -> Result<Json<wire::V1ContactResponse>, ApiError> {
    let c = state
        .app
        .contacts()
        .get(&p.workspace_id, &agent_id, &contact_id)
        .await
        .map_err(v1_error)?;
    Ok(Json(wire::V1ContactResponse {
        message: SUCCESS.into(),
        data: contact(c),
    }))
}

#[utoipa::path(patch, path = "/api/v1/chatbots/{agentId}/contacts/{contactId}", tag = "v1",
    params(("agentId" = String, Path, description = "The chatbot's id"), ("contactId" = String, Path)),
    request_body = wire::V1UpdateContact,
    responses((status = 200, body = wire::V1ContactResponse), (status = 400, body = V1Error),
              (status = 404, body = V1Error), (status = 409, body = V1Error)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, contact_id)): Path<(String, String)>,
    AppJson(body): AppJson<Value>,
) -> Result<Json<wire::V1ContactResponse>, ApiError> {
    let data = match body.get("data") {
        Some(d @ Value::Object(_)) => d,
        None => return Err(invalid_field("data", "Required")),
        Some(_) => return Err(invalid_field("data", "Expected object")),
    };
    let c = state
        .app
        .contacts()
        .update_contact(&p.workspace_id, &agent_id, &contact_id, data)
        .await
        .map_err(v1_error)?;
    Ok(Json(wire::V1ContactResponse {
        message: SUCCESS.into(),
        data: contact(c),
    }))
}

#[utoipa::path(delete, path = "/api/v1/chatbots/{agentId}/contacts/{contactId}", tag = "v1",
    params(("agentId" = String, Path, description = "The chatbot's id"), ("contactId" = String, Path)),
    responses((status = 200, description = "The deleted contact", body = wire::V1ContactResponse),
              (status = 404, body = V1Error)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, contact_id)): Path<(String, String)>,
) -> Result<Json<wire::V1ContactResponse>, ApiError> {
    let c = state
        .app
        .contacts()
        .delete_contact(&p.workspace_id, &agent_id, &contact_id)
        .await
        .map_err(v1_error)?;
    Ok(Json(wire::V1ContactResponse {
        message: SUCCESS.into(),
        data: contact(c),
    }))
}

#[utoipa::path(get, path = "/api/v1/chatbots/{agentId}/custom-attributes", tag = "v1",
    params(("agentId" = String, Path, description = "The chatbot's id")),
    responses((status = 200, body = wire::V1CustomAttributesResponse), (status = 404, body = V1Error)),
    security(("bearer" = [])))]
pub async fn attributes(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<Json<wire::V1CustomAttributesResponse>, ApiError> {
    let list = state
        .app
        .contacts()
        .contact_attributes(&p.workspace_id, &agent_id)
        .await
        .map_err(v1_error)?;
    Ok(Json(wire::V1CustomAttributesResponse {
        message: SUCCESS.into(),
        data: list.into_iter().map(attribute).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/chatbots/{agentId}/custom-attributes", tag = "v1",
    params(("agentId" = String, Path, description = "The chatbot's id")), request_body = wire::V1CreateCustomAttribute,
    responses((status = 200, body = wire::V1CustomAttributeResponse), (status = 400, body = V1Error),
              (status = 404, body = V1Error), (status = 409, body = V1Error)),
    security(("bearer" = [])))]
pub async fn create_attribute(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    AppJson(body): AppJson<Value>,
) -> Result<Json<wire::V1CustomAttributeResponse>, ApiError> {
    let a = state
        .app
        .contacts()
        .create_contact_attribute(&p.workspace_id, &agent_id, &body)
        .await
        .map_err(v1_error)?;
    Ok(Json(wire::V1CustomAttributeResponse {
        message: SUCCESS.into(),
        data: attribute(a),
    }))
}

#[utoipa::path(put, path = "/api/v1/chatbots/{agentId}/custom-attributes/{name}", tag = "v1",
    params(("agentId" = String, Path, description = "The chatbot's id"), ("name" = String, Path)),
    request_body = wire::V1UpdateCustomAttribute,
    responses((status = 200, body = wire::V1CustomAttributeResponse), (status = 400, body = V1Error),
              (status = 404, body = V1Error)),
    security(("bearer" = [])))]
pub async fn update_attribute(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, name)): Path<(String, String)>,
    AppJson(body): AppJson<Value>,
) -> Result<Json<wire::V1CustomAttributeResponse>, ApiError> {
    let a = state
        .app
        .contacts()
        .update_contact_attribute(&p.workspace_id, &agent_id, &name, &body)
        .await
        .map_err(v1_error)?;
    Ok(Json(wire::V1CustomAttributeResponse {
        message: SUCCESS.into(),
        data: attribute(a),
    }))
}

/// The secret is made on first ask, so every agent has one, as in Chatbase.
#[utoipa::path(get, path = "/api/v2/agents/{agentId}/identity-verification", tag = "contacts",
    params(("agentId" = String, Path)),
    responses((status = 200, body = wire::IdentitySecretResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn identity_secret(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<Json<wire::IdentitySecretResponse>, ApiError> {
    Ok(secret(
        state
            .app
            .contacts()
            .identity_secret(&p.workspace_id, &agent_id)
            .await?,
    ))
}

/// A new secret; hashes made with the old one stop verifying at once.
#[utoipa::path(post, path = "/api/v2/agents/{agentId}/identity-verification", tag = "contacts",
    params(("agentId" = String, Path)),
    responses((status = 200, body = wire::IdentitySecretResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn rotate_identity_secret(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<Json<wire::IdentitySecretResponse>, ApiError> {
    Ok(secret(
        state
            .app
            .contacts()
            .rotate_identity_secret(&p.workspace_id, &agent_id)
            .await?,
    ))
}
