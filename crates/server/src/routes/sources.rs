//! `/api/v2/agents/{agentId}/sources` (text, Q&A, link and file sources), the
//! contract's training endpoints (`train`, `auto-retrain`, `restore`), and two
//! agentbase extensions: training jobs and retrieval testing (`search`).

use agentbase_api_types as api;
use agentbase_core::knowledge::{LinkOptions, LinkType, NewSource, SourceContent, SourceKind};
use agentbase_service::files;
use agentbase_service::knowledge::SourceUpdate;
use agentbase_service::{Principal, SourceFilter};
use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::{Extension, Json};

use crate::AppState;
use crate::dto::sources::{job_dto, search_dto, source_dto, source_list_dto, summary_dto};
use crate::error::ApiError;
use crate::extract::{AppJson, PageQuery, QueryMap};

/// The domain form of a create body.
pub fn new_source(body: api::CreateSourceBody) -> Result<NewSource, ApiError> {
    Ok(match body {
        api::CreateSourceBody::Text { name, content } => NewSource {
            name,
            content: SourceContent::Text { content },
        },
        api::CreateSourceBody::Qna {
            name,
            questions,
            answer,
        } => NewSource {
            name,
            content: SourceContent::Qna { questions, answer },
        },
        api::CreateSourceBody::Link {
            url,
            link_type,
            exclude_paths,
            include_only_paths,
            slow_scraping,
        } => {
            let link_type = match link_type.as_str() {
                "individual" => LinkType::Individual,
                "crawl" => LinkType::Crawl,
                "sitemap" => LinkType::Sitemap,
                _ => {
                    return Err(ApiError::invalid_field(
                        "linkType",
                        "must be individual, sitemap or crawl",
                    ));
                }
            };
            NewSource {
                name: url.clone(),
                content: SourceContent::Link {
                    url,
                    options: LinkOptions {
                        link_type,
                        exclude_paths,
                        include_only_paths,
                        slow_scraping,
                    },
                },
            }
        }
    })
}

fn is_multipart(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// `name` and `file` fields of a file upload.
struct Upload {
    name: Option<String>,
    file: Option<files::Upload>,
}

/// A multipart form's file field as an upload (named `upload` when it has no name),
/// for the API's and the dashboard's forms.
pub(crate) async fn file_field(
    field: axum::extract::multipart::Field<'_>,
) -> Result<files::Upload, axum::extract::multipart::MultipartError> {
    let filename = field.file_name().unwrap_or("upload").to_owned();
    let content_type = field.content_type().map(str::to_owned);
    let bytes = field.bytes().await?;
    Ok(files::Upload {
        filename,
        content_type,
        bytes: bytes.to_vec(),
    })
}

async fn read_upload(req: Request, state: &AppState) -> Result<Upload, ApiError> {
    let mut form = Multipart::from_request(req, state)
        .await
        .map_err(|e| ApiError::invalid_field("body", format!("not a multipart form: {e}")))?;
    let mut upload = Upload {
        name: None,
        file: None,
    };
    let too_large = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                api::codes::VALIDATION_BODY_TOO_LARGE,
                "The file is too large",
            )
        } else {
            ApiError::invalid_field("file", format!("could not read the upload: {e}"))
        }
    };
    while let Some(field) = form.next_field().await.map_err(too_large)? {
        match field.name() {
            Some("name") => upload.name = Some(field.text().await.map_err(too_large)?),
            Some("file") => upload.file = Some(file_field(field).await.map_err(too_large)?),
            Some(other) => {
                return Err(ApiError::invalid_field(
                    other,
                    "unknown field (expected name and file)",
                ));
            }
            None => {}
        }
    }
    Ok(upload)
}

#[utoipa::path(post, path = "/api/v2/agents/{agentId}/sources", tag = "sources",
    params(("agentId" = String, Path)),
    request_body(content = api::CreateSourceBody, description = "JSON (text, qna, link) or multipart/form-data with `name` and `file` (txt, md, html, pdf, docx)"),
    responses((status = 201, body = api::SourceListItem), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse), (status = 409, body = api::ErrorResponse),
              (status = 422, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    req: Request,
) -> Result<(StatusCode, Json<api::SourceListItem>), ApiError> {
    let knowledge = state.app.knowledge();
    let source = if is_multipart(&req) {
        let upload = read_upload(req, &state).await?;
        let file = upload
            .file
            .ok_or_else(|| ApiError::invalid_field("file", "Required"))?;
        knowledge.add_file(&p, &agent_id, upload.name, file).await?
    } else {
        let AppJson(body) = AppJson::<api::CreateSourceBody>::from_request(req, &state).await?;
        knowledge
            .create_source(&p, &agent_id, new_source(body)?)
            .await?
    };
    Ok((StatusCode::CREATED, Json(source_dto(source))))
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/sources", tag = "sources",
    params(("agentId" = String, Path),
           ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
           ("type" = Option<String>, Query, description = "Comma-separated: link, file, qna, notionPage, text"),
           ("name" = Option<String>, Query, description = "Case-insensitive part of the name")),
    responses((status = 200, body = api::ListSourcesResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    SourceListQuery { page, filter }: SourceListQuery,
) -> Result<Json<api::ListSourcesResponse>, ApiError> {
    let (cursor, limit) = (page.cursor.as_ref(), page.limit);
    let result = match filter {
        Some(filter) => {
            (state.app.knowledge())
                .sources(&p, &agent_id, &filter, cursor, limit)
                .await?
        }
        // A filter that can match nothing: an empty page.
        None => agentbase_service::Page {
            items: Vec::new(),
            has_more: false,
            total: 0,
        },
    };
    Ok(Json(source_list_dto(result)))
}

/// The source list's page and filter (`name`, comma-separated `type`s); `None`
/// for the filter when it can match nothing (only `notionPage`, a contract type
/// agentbase does not have).
pub struct SourceListQuery {
    page: PageQuery,
    filter: Option<SourceFilter>,
}

impl<S: Send + Sync> FromRequestParts<S> for SourceListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        source_list_query(&q)
    }
}

fn source_list_query(q: &QueryMap) -> Result<SourceListQuery, ApiError> {
    let mut details = std::collections::BTreeMap::new();
    let page = PageQuery::read(q, PageQuery::MAX_LIMIT, &mut details);
    let mut filter = SourceFilter {
        name: q.get("name").map(str::to_owned),
        ..Default::default()
    };
    let mut only_unsupported = false;
    if let Some(types) = q.get("type") {
        for t in types.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match (SourceKind::parse(t), t) {
                (Some(k), _) => filter.kinds.push(k),
                (None, "notionPage") => only_unsupported = true,
                (None, _) => {
                    details.insert(
                        "type".into(),
                        "comma-separated link, file, qna, notionPage or text".into(),
                    );
                }
            }
        }
    }
    if !details.is_empty() {
        return Err(ApiError::invalid_body(details));
    }
    let matches_nothing = only_unsupported && filter.kinds.is_empty();
    Ok(SourceListQuery {
        page,
        filter: (!matches_nothing).then_some(filter),
    })
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/sources/summary", tag = "sources",
    params(("agentId" = String, Path)),
    responses((status = 200, body = api::SourcesSummaryResponse), (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn summary(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<Json<api::SourcesSummaryResponse>, ApiError> {
    let s = state.app.knowledge().sources_summary(&p, &agent_id).await?;
    Ok(Json(summary_dto(s)))
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/sources/{sourceId}", tag = "sources",
    params(("agentId" = String, Path), ("sourceId" = String, Path)),
    responses((status = 200, body = api::SourceListItem), (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, source_id)): Path<(String, String)>,
) -> Result<Json<api::SourceListItem>, ApiError> {
    let s = state
        .app
        .knowledge()
        .source(&p, &agent_id, &source_id)
        .await?;
    Ok(Json(source_dto(s)))
}

#[utoipa::path(put, path = "/api/v2/agents/{agentId}/sources/{sourceId}", tag = "sources",
    params(("agentId" = String, Path), ("sourceId" = String, Path)),
    request_body(content = api::UpdateSourceBody, description = "JSON, or multipart/form-data with `name` and/or `file` for file sources"),
    responses((status = 200, body = api::SourceListItem), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse), (status = 409, body = api::ErrorResponse),
              (status = 422, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, source_id)): Path<(String, String)>,
    req: Request,
) -> Result<Json<api::SourceListItem>, ApiError> {
    let update = source_update(req, &state).await?;
    let s = state
        .app
        .knowledge()
        .update_source(&p, &agent_id, &source_id, update)
        .await?;
    Ok(Json(source_dto(s)))
}

/// The update a body asks for: multipart with a new name and/or file (extracted
/// off the runtime), or JSON with the fields to change.
async fn source_update(req: Request, state: &AppState) -> Result<SourceUpdate, ApiError> {
    Ok(if is_multipart(&req) {
        let upload = read_upload(req, state).await?;
        if upload.name.is_none() && upload.file.is_none() {
            return Err(ApiError::invalid_field(
                "body",
                "give a new name, a new file or both",
            ));
        }
        SourceUpdate {
            name: upload.name,
            file: upload.file,
            ..Default::default()
        }
    } else {
        let AppJson(b) = AppJson::<api::UpdateSourceBody>::from_request(req, state).await?;
        if b == api::UpdateSourceBody::default() {
            return Err(ApiError::invalid_field("body", "no fields to update"));
        }
        SourceUpdate {
            name: b.name,
            content: b.content,
            questions: b.questions,
            answer: b.answer,
            exclude_paths: b.exclude_paths,
            include_only_paths: b.include_only_paths,
            slow_scraping: b.slow_scraping,
            file: None,
        }
    })
}

#[utoipa::path(delete, path = "/api/v2/agents/{agentId}/sources/{sourceId}", tag = "sources",
    params(("agentId" = String, Path), ("sourceId" = String, Path)),
    responses((status = 200, body = api::SourceListItem, description = "The deleted source, status `deleted`"),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, source_id)): Path<(String, String)>,
) -> Result<Json<api::SourceListItem>, ApiError> {
    let s = state
        .app
        .knowledge()
        .delete_source(&p, &agent_id, &source_id)
        .await?;
    let mut dto = source_dto(s);
    dto.status = "deleted".into();
    Ok(Json(dto))
}

fn deprecated(message: &str) -> Json<api::DeprecatedEndpointResponse> {
    Json(api::DeprecatedEndpointResponse {
        success: true,
        deprecated: true,
        message: message.to_owned(),
    })
}

#[utoipa::path(post, path = "/api/v2/agents/{agentId}/sources/{sourceId}/restore", tag = "sources",
    params(("agentId" = String, Path), ("sourceId" = String, Path)),
    responses((status = 200, body = api::DeprecatedEndpointResponse), (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn restore(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, _source_id)): Path<(String, String)>,
) -> Result<Json<api::DeprecatedEndpointResponse>, ApiError> {
    state.app.agents().get(&p.workspace_id, &agent_id).await?;
    Ok(deprecated(
        "Deprecated: this endpoint does nothing. A delete takes effect immediately; re-create the source instead.",
    ))
}

#[utoipa::path(post, path = "/api/v2/agents/{agentId}/train", tag = "sources",
    params(("agentId" = String, Path)),
    responses((status = 200, body = api::DeprecatedEndpointResponse), (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn train(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<Json<api::DeprecatedEndpointResponse>, ApiError> {
    state.app.agents().get(&p.workspace_id, &agent_id).await?;
    Ok(deprecated(
        "Deprecated: this endpoint does nothing. Sources train as soon as they are created, updated or deleted, so changes take effect immediately. Poll GET /agents/{agentId}/sources/{sourceId} for a source status.",
    ))
}

#[utoipa::path(put, path = "/api/v2/agents/{agentId}/auto-retrain", tag = "sources",
    params(("agentId" = String, Path)), request_body = api::AutoRetrainBody,
    responses((status = 200, body = api::SuccessResponse), (status = 400, body = api::ErrorResponse),
              (status = 403, body = api::ErrorResponse), (status = 404, body = api::ErrorResponse),
              (status = 409, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn auto_retrain(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    AppJson(body): AppJson<api::AutoRetrainBody>,
) -> Result<Json<api::SuccessResponse>, ApiError> {
    state
        .app
        .knowledge()
        .set_auto_retrain(&p, &agent_id, body.enabled)
        .await?;
    Ok(Json(api::SuccessResponse { success: true }))
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/training-jobs", tag = "sources",
    description = "agentbase extension: the agent's training jobs, newest first, with progress.",
    params(("agentId" = String, Path)),
    responses((status = 200, body = api::TrainingJobsResponse), (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn jobs(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<Json<api::TrainingJobsResponse>, ApiError> {
    let jobs = state.app.knowledge().training_jobs(&p, &agent_id).await?;
    Ok(Json(api::TrainingJobsResponse {
        data: jobs.into_iter().map(job_dto).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v2/agents/{agentId}/search", tag = "sources",
    description = "agentbase extension (retrieval testing): the agent's knowledge ranked for a query, with scores.",
    params(("agentId" = String, Path)), request_body = api::SearchBody,
    responses((status = 200, body = api::SearchResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn search(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    AppJson(body): AppJson<api::SearchBody>,
) -> Result<Json<api::SearchResponse>, ApiError> {
    let limit = body.limit.unwrap_or(10) as usize;
    let knowledge = state.app.knowledge();
    let hits = (knowledge.search_knowledge(&p, &agent_id, &body.query, limit)).await?;
    Ok(Json(search_dto(&hits, body.group_by_page.unwrap_or(false))))
}
