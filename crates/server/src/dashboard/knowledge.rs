//! An agent's sources: add (text, Q&A, file, website crawl, Apify dataset),
//! status, delete, retrain, auto-retrain, and live training progress.

use agentbase_api_types as api;
use agentbase_core::Agent;
use agentbase_core::knowledge::{Source, SourceContent, TrainingJob};
use agentbase_service::{Principal, files};
use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::auth::{Form, Session};
use super::html::{Notice, when};
use super::page::{AgentPage, WsPosted};
use super::{Problem, Ws, back, lines};
use crate::AppState;
use crate::dto::widget::TrainingProgress;
use crate::routes;
use crate::routes::sources::file_field;

/// One row of the sources table.
#[derive(Serialize)]
struct SourceRow {
    id: String,
    name: String,
    kind: &'static str,
    status: &'static str,
    error: Option<String>,
    pages: i64,
    size: i64,
    added: String,
}

impl SourceRow {
    /// A website source is shown by its URL, any other by its name.
    fn of(src: Source) -> Self {
        SourceRow {
            name: match &src.content {
                SourceContent::Link { url, .. } => url.clone(),
                _ => src.name.clone(),
            },
            kind: src.content.kind().as_str(),
            status: src.status.as_str(),
            pages: src.pages,
            size: src.size,
            added: when(src.created_at),
            error: src.error,
            id: src.id,
        }
    }
}

/// An unfinished training job, for the progress list.
#[derive(Serialize)]
struct JobRow {
    stage: String,
    status: &'static str,
    done: i64,
    total: i64,
}

/// Sources on the page (and in its live progress).
const PAGE_SOURCES: u32 = 100;

pub async fn sources(
    State(state): State<AppState>,
    page: AgentPage,
    notice: Notice,
) -> Result<Response, Problem> {
    let (sources, jobs) = (state.app.knowledge())
        .training_state(&page.w.principal, &page.agent.id, PAGE_SOURCES)
        .await?;
    let context = SourcesContext::of(&page.agent, sources, &jobs);
    page.render("Sources", "sources", &notice, "sources.html", context)
}

/// What the sources template shows.
#[derive(Serialize)]
struct SourcesContext {
    agent: AgentTraining,
    auto_retrain: bool,
    jobs: Vec<JobRow>,
    running: bool,
    sources: Vec<SourceRow>,
}

/// The agent's training status.
#[derive(Serialize)]
struct AgentTraining {
    last_trained: Option<String>,
    status: &'static str,
}

impl SourcesContext {
    fn of(a: &Agent, sources: Vec<Source>, jobs: &[TrainingJob]) -> Self {
        let sources: Vec<_> = sources.into_iter().map(SourceRow::of).collect();
        let jobs: Vec<_> = jobs.iter().map(JobRow::of).collect();
        SourcesContext {
            agent: AgentTraining {
                last_trained: a.last_trained_at.map(when),
                status: a.status.as_str(),
            },
            auto_retrain: a.auto_retrain,
            running: may_change(a, &sources, &jobs),
            jobs,
            sources,
        }
    }
}

impl JobRow {
    fn of(j: &TrainingJob) -> Self {
        JobRow {
            stage: j.stage.clone(),
            status: j.status.as_str(),
            done: j.done,
            total: j.total,
        }
    }
}

/// Whether the sources page polls: while anything may still change. A job can end
/// between the page's reads (a short text trains in well under a second), leaving
/// a source shown untrained with no job left: a poll then shows where it ended.
fn may_change(a: &Agent, sources: &[SourceRow], jobs: &[JobRow]) -> bool {
    !jobs.is_empty()
        || a.status.as_str() == "training"
        || (sources.iter()).any(|s| matches!(s.status, "untrained" | "updated"))
}

/// A multipart form's text fields and its one file.
struct Upload {
    form: Form,
    file: Option<files::Upload>,
}

/// A posted multipart form from a signed-in operator: the session (refused as
/// `Session` refuses), the workspace of the path, then the form, read and its CSRF
/// token checked. A form that cannot be read, or a missing workspace, goes back
/// with the error; a refused token is the 403 page.
pub struct PostedUpload {
    w: Result<Ws, Problem>,
    upload: Result<Upload, Problem>,
}

impl FromRequest<AppState> for PostedUpload {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let w = Ws::from_request_parts(&mut parts, state).await;
        let headers = parts.headers.clone();
        let upload = async {
            let upload = read_form(Request::from_parts(parts, body), state).await?;
            session.check_csrf(&headers, upload.form.get("_csrf"))?;
            Ok(upload)
        };
        let upload = upload.await;
        Ok(PostedUpload { w, upload })
    }
}

async fn read_form(req: Request, state: &AppState) -> Result<Upload, Problem> {
    let mut multipart = Multipart::from_request(req, state)
        .await
        .map_err(|_| Problem::bad("The form could not be read."))?;
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The file is larger than 20 MB.",
            )
        } else {
            Problem::bad(format!("The upload could not be read: {e}"))
        }
    };
    let mut upload = Upload {
        form: Form::default(),
        file: None,
    };
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or("").to_owned();
        if name == "file" {
            let file = file_field(field).await.map_err(unreadable)?;
            if !file.bytes.is_empty() {
                upload.file = Some(file);
            }
        } else {
            let text = field.text().await.map_err(unreadable)?;
            upload.form.0.push((name, text));
        }
    }
    Ok(upload)
}

/// Adds the source a dashboard form describes: text, Q&A and websites go through
/// the API's own body type, files and datasets are read by the knowledge service.
async fn add_from_form(
    state: &AppState,
    p: &Principal,
    agent_id: &str,
    upload: Upload,
) -> Result<Source, Problem> {
    let knowledge = state.app.knowledge();
    let f = &upload.form;
    let name = f.get("name").unwrap_or("").to_owned();
    let body = match f.get("kind") {
        Some("text") => api::CreateSourceBody::Text {
            name,
            content: f.raw("content").to_owned(),
        },
        Some("qna") => api::CreateSourceBody::Qna {
            name,
            questions: lines(f.raw("questions")),
            answer: f.raw("answer").to_owned(),
        },
        Some("website") => api::CreateSourceBody::Link {
            url: f.get("url").unwrap_or("").to_owned(),
            link_type: f.get("linkType").unwrap_or("crawl").to_owned(),
            exclude_paths: lines(f.raw("excludePaths")),
            include_only_paths: lines(f.raw("includeOnlyPaths")),
            slow_scraping: false,
        },
        Some("file" | "apify") => {
            let file = (upload.file).ok_or_else(|| Problem::bad("Choose a file to upload."))?;
            let name = (!name.is_empty()).then_some(name);
            return Ok(knowledge.add_file(p, agent_id, name, file).await?);
        }
        _ => return Err(Problem::bad("Choose what kind of source to add.")),
    };
    let new = routes::sources::new_source(body).map_err(Problem::from)?;
    Ok(knowledge.create_source(p, agent_id, new).await?)
}

pub async fn add_source(
    State(state): State<AppState>,
    Path((ws, agent_id)): Path<(String, String)>,
    PostedUpload { w, upload }: PostedUpload,
) -> Response {
    let result = async {
        let upload = upload?;
        let w = w?;
        let source = add_from_form(&state, &w.principal, &agent_id, upload).await?;
        Ok::<_, Problem>(format!("Added “{}”: training has started.", source.name))
    }
    .await;
    match result {
        Err(p) if p.status == StatusCode::FORBIDDEN => p.into_response(),
        r => back(&sources_url(&ws, &agent_id), r),
    }
}

fn sources_url(ws: &str, agent_id: &str) -> String {
    format!("/dashboard/w/{ws}/agents/{agent_id}/sources")
}

pub async fn delete_source(
    State(state): State<AppState>,
    Path((ws, agent_id, source_id)): Path<(String, String, String)>,
    WsPosted { w, .. }: WsPosted,
) -> Response {
    let result = async {
        let w = w?;
        let deleted = (state.app.knowledge()).delete_source(&w.principal, &agent_id, &source_id);
        Ok(format!("Deleted “{}”.", deleted.await?.name))
    }
    .await;
    back(&sources_url(&ws, &agent_id), result)
}

pub async fn retrain(
    State(state): State<AppState>,
    Path((ws, agent_id)): Path<(String, String)>,
    WsPosted { w, .. }: WsPosted,
) -> Response {
    let result = async {
        let w = w?;
        let n = state.app.knowledge().retrain(&w.principal, &agent_id);
        Ok(match n.await? {
            0 => "There are no sources to train.".to_owned(),
            n => format!("Retraining {n} source(s)."),
        })
    }
    .await;
    back(&sources_url(&ws, &agent_id), result)
}

pub async fn auto_retrain(
    State(state): State<AppState>,
    Path((ws, agent_id)): Path<(String, String)>,
    WsPosted { w, form, .. }: WsPosted,
) -> Response {
    let enabled = form.checked("enabled");
    let result = async {
        let w = w?;
        let set = (state.app.knowledge()).set_auto_retrain(&w.principal, &agent_id, enabled);
        set.await?;
        let now = if enabled { "on" } else { "off" };
        Ok(format!("Automatic retraining is {now}."))
    }
    .await;
    back(&sources_url(&ws, &agent_id), result)
}

/// Live progress for the sources page's script: the agent's status, each
/// source's status and the unfinished jobs.
pub async fn training_json(
    State(state): State<AppState>,
    page: AgentPage,
) -> Result<Response, Problem> {
    let (sources, jobs) = (state.app.knowledge())
        .training_state(&page.w.principal, &page.agent.id, PAGE_SOURCES)
        .await?;
    let body = TrainingProgress::of(&page.agent, &sources, &jobs);
    let no_store = [(axum::http::header::CACHE_CONTROL, "no-store")];
    Ok((no_store, Json(body)).into_response())
}
