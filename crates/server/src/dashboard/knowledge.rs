//! An agent's sources: add (text, Q&A, file, website crawl, Apify dataset),
//! status, delete, retrain, auto-retrain, and live training progress.

use std::fmt::Write;

use agentbase_api_types as api;
use agentbase_core::knowledge::{NewSource, SourceContent, SourceStatus};
use agentbase_service::SourceFilter;
use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::{Form, Posted, Session};
use super::html::{Nav, csrf_field, esc, table, when};
use super::workspaces::notice;
use super::{Problem, agent_page, back, lines, render, workspace};
use crate::AppState;
use crate::extract::QueryMap;
use crate::routes;
use crate::routes::sources::extracted;

fn status_label(s: SourceStatus) -> &'static str {
    s.as_str()
}

pub async fn sources(
    State(state): State<AppState>,
    s: Session,
    Path((ws, agent_id)): Path<(String, String)>,
    q: QueryMap,
) -> Result<Response, Problem> {
    let (w, a) = agent_page(&state, &ws, &agent_id).await?;
    let list = state
        .app
        .sources(&w.principal, &a.id, &SourceFilter::default(), None, 100)
        .await?;
    let base = format!("/dashboard/w/{}/agents/{}", esc(&ws), esc(&a.id));
    let csrf = csrf_field(&s.csrf_token);
    let rows: Vec<Vec<String>> = list
        .items
        .iter()
        .map(|src| {
            let name = match &src.content {
                SourceContent::Link { url, .. } => url.clone(),
                _ => src.name.clone(),
            };
            let mut status = format!(
                "<span class=\"status {0}\" data-source-status=\"{1}\">{0}</span>",
                status_label(src.status),
                esc(&src.id)
            );
            if let Some(err) = &src.error {
                let _ = write!(status, "<div class=\"error\">{}</div>", esc(err));
            }
            vec![
                esc(&name),
                esc(src.content.kind().as_str()),
                status,
                if src.pages > 0 { src.pages.to_string() } else { String::new() },
                format!("{} B", src.size),
                when(src.created_at),
                format!(
                    "<form class=\"inline\" method=\"post\" action=\"{base}/sources/{}/delete\" data-confirm=\"Delete this source?\">{csrf}\
                     <button class=\"danger\" type=\"submit\" aria-label=\"Delete {}\">Delete</button></form>",
                    esc(&src.id),
                    esc(&name)
                ),
            ]
        })
        .collect();
    let jobs = state.app.training_jobs(&w.principal, &a.id).await?;
    let running = jobs.iter().any(|j| !j.status.is_finished());
    let auto = if a.auto_retrain { "checked" } else { "" };
    let body = format!(
        "<section class=\"card\" id=\"training\" data-progress-url=\"{base}/training.json\" data-live=\"{running}\">\
         <h2>Training</h2><p>Agent status: <strong id=\"agent-status\">{}</strong>{}</p>\
         <ul id=\"training-progress\" aria-live=\"polite\">{}</ul>\
         <div class=\"row\"><form class=\"inline\" method=\"post\" action=\"{base}/retrain\">{csrf}\
         <button type=\"submit\">Retrain now</button></form>\
         <form class=\"inline\" method=\"post\" action=\"{base}/auto-retrain\">{csrf}\
         <label class=\"check\"><input type=\"checkbox\" name=\"enabled\" value=\"1\" {auto}> Retrain automatically (weekly)</label>\
         <button type=\"submit\">Save</button></form></div></section>\
         {}\
         <section class=\"card\"><h2>Add a source</h2>\
         <details open><summary>Text</summary><form method=\"post\" action=\"{base}/sources\" enctype=\"multipart/form-data\">{csrf}\
         <input type=\"hidden\" name=\"kind\" value=\"text\">\
         <label for=\"text-name\">Title</label><input id=\"text-name\" name=\"name\" required maxlength=\"200\">\
         <label for=\"text-content\">Text</label><textarea id=\"text-content\" name=\"content\" rows=\"6\" required></textarea>\
         <button type=\"submit\">Add text</button></form></details>\
         <details><summary>Question and answer</summary><form method=\"post\" action=\"{base}/sources\" enctype=\"multipart/form-data\">{csrf}\
         <input type=\"hidden\" name=\"kind\" value=\"qna\">\
         <label for=\"qna-name\">Title</label><input id=\"qna-name\" name=\"name\" required maxlength=\"200\">\
         <label for=\"qna-questions\">Questions, one per line</label><textarea id=\"qna-questions\" name=\"questions\" rows=\"3\" required></textarea>\
         <label for=\"qna-answer\">Answer</label><textarea id=\"qna-answer\" name=\"answer\" rows=\"4\" required></textarea>\
         <button type=\"submit\">Add Q&amp;A</button></form></details>\
         <details><summary>File</summary><form method=\"post\" action=\"{base}/sources\" enctype=\"multipart/form-data\">{csrf}\
         <input type=\"hidden\" name=\"kind\" value=\"file\">\
         <label for=\"file-file\">File (txt, md, html, pdf, docx; up to 20 MB)</label>\
         <input id=\"file-file\" name=\"file\" type=\"file\" required accept=\".txt,.md,.markdown,.html,.htm,.pdf,.docx\">\
         <button type=\"submit\">Upload</button></form></details>\
         <details><summary>Website</summary><form method=\"post\" action=\"{base}/sources\" enctype=\"multipart/form-data\">{csrf}\
         <input type=\"hidden\" name=\"kind\" value=\"website\">\
         <label for=\"site-url\">URL</label><input id=\"site-url\" name=\"url\" type=\"url\" required placeholder=\"https://docs.example.com/\">\
         <label for=\"site-type\">What to fetch</label><select id=\"site-type\" name=\"linkType\">\
         <option value=\"crawl\">Crawl the site from this page</option><option value=\"sitemap\">The pages of this sitemap</option>\
         <option value=\"individual\">Only this page</option></select>\
         <label for=\"site-include\">Only paths matching (regexes, one per line)</label><textarea id=\"site-include\" name=\"includeOnlyPaths\" rows=\"2\"></textarea>\
         <label for=\"site-exclude\">Skip paths matching (regexes, one per line)</label><textarea id=\"site-exclude\" name=\"excludePaths\" rows=\"2\"></textarea>\
         <button type=\"submit\">Crawl and train</button></form></details>\
         <details><summary>Apify dataset</summary><form method=\"post\" action=\"{base}/sources\" enctype=\"multipart/form-data\">{csrf}\
         <input type=\"hidden\" name=\"kind\" value=\"apify\">\
         <p>A Website Content Crawler dataset export (JSON or JSONL); each page keeps its URL for citations.</p>\
         <label for=\"apify-name\">Title</label><input id=\"apify-name\" name=\"name\" maxlength=\"200\">\
         <label for=\"apify-file\">Dataset file</label><input id=\"apify-file\" name=\"file\" type=\"file\" required accept=\".json,.jsonl\">\
         <button type=\"submit\">Import</button></form></details></section>",
        esc(a.status.as_str()),
        a.last_trained_at
            .map(|t| format!(", last trained {}", when(t)))
            .unwrap_or_default(),
        jobs.iter()
            .filter(|j| !j.status.is_finished())
            .map(|j| format!(
                "<li>{} {}: {}/{}</li>",
                esc(&j.stage),
                esc(j.status.as_str()),
                j.done,
                j.total
            ))
            .collect::<String>(),
        table(
            "Sources",
            &["Name", "Type", "Status", "Pages", "Size", "Added", ""],
            &rows,
            "No sources yet: add one below."
        ),
    );
    let nav = Nav {
        workspace: Some((&w.workspace.id, &w.workspace.name)),
        agent: Some((&a.id, &a.name)),
        current: "sources",
    };
    Ok(render(&s, "Sources", &nav, &notice(&q), &body))
}

/// A multipart form's text fields and its one file.
struct Upload {
    form: Form,
    file: Option<(String, Option<String>, Vec<u8>)>,
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
            let filename = field.file_name().unwrap_or("upload").to_owned();
            let content_type = field.content_type().map(str::to_owned);
            let bytes = field.bytes().await.map_err(unreadable)?;
            if !bytes.is_empty() {
                upload.file = Some((filename, content_type, bytes.to_vec()));
            }
        } else {
            let text = field.text().await.map_err(unreadable)?;
            upload.form.0.push((name, text));
        }
    }
    Ok(upload)
}

/// The domain source a dashboard form describes: text, Q&A and websites go
/// through the API's own body type, files and datasets through its extraction.
async fn new_source(app: &agentbase_service::App, upload: Upload) -> Result<NewSource, Problem> {
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
            let Some((filename, media_type, content, pages)) =
                extracted(app, upload.file).await.map_err(Problem::from)?
            else {
                return Err(Problem::bad("Choose a file to upload."));
            };
            return Ok(NewSource {
                name: if name.is_empty() {
                    filename.clone()
                } else {
                    name
                },
                content: SourceContent::File {
                    filename,
                    media_type,
                    content,
                    pages,
                },
            });
        }
        _ => return Err(Problem::bad("Choose what kind of source to add.")),
    };
    routes::sources::new_source(body).map_err(Problem::from)
}

pub async fn add_source(
    State(state): State<AppState>,
    s: Session,
    Path((ws, agent_id)): Path<(String, String)>,
    req: Request,
) -> Response {
    let to = format!("/dashboard/w/{ws}/agents/{agent_id}/sources");
    let headers = req.headers().clone();
    let result = async {
        let upload = read_form(req, &state).await?;
        s.check_csrf(&headers, upload.form.get("_csrf"))?;
        let w = workspace(&state, &ws).await?;
        let new = new_source(&state.app, upload).await?;
        let source = state
            .app
            .create_source(&w.principal, &agent_id, new)
            .await?;
        Ok::<_, Problem>(format!("Added “{}”: training has started.", source.name))
    }
    .await;
    match result {
        Err(p) if p.status == StatusCode::FORBIDDEN => p.into_response(),
        r => back(&to, r),
    }
}

pub async fn delete_source(
    State(state): State<AppState>,
    Path((ws, agent_id, source_id)): Path<(String, String, String)>,
    _p: Posted,
) -> Response {
    let result = async {
        let w = workspace(&state, &ws).await?;
        let s = state
            .app
            .delete_source(&w.principal, &agent_id, &source_id)
            .await?;
        Ok(format!("Deleted “{}”.", s.name))
    }
    .await;
    back(
        &format!("/dashboard/w/{ws}/agents/{agent_id}/sources"),
        result,
    )
}

pub async fn retrain(
    State(state): State<AppState>,
    Path((ws, agent_id)): Path<(String, String)>,
    _p: Posted,
) -> Response {
    let result = async {
        let w = workspace(&state, &ws).await?;
        let n = state.app.retrain(&w.principal, &agent_id).await?;
        Ok(if n == 0 {
            "There are no sources to train.".to_owned()
        } else {
            format!("Retraining {n} source(s).")
        })
    }
    .await;
    back(
        &format!("/dashboard/w/{ws}/agents/{agent_id}/sources"),
        result,
    )
}

pub async fn auto_retrain(
    State(state): State<AppState>,
    Path((ws, agent_id)): Path<(String, String)>,
    p: Posted,
) -> Response {
    let enabled = p.form.checked("enabled");
    let result = async {
        let w = workspace(&state, &ws).await?;
        state
            .app
            .set_auto_retrain(&w.principal, &agent_id, enabled)
            .await?;
        Ok(if enabled {
            "Automatic retraining is on.".to_owned()
        } else {
            "Automatic retraining is off.".to_owned()
        })
    }
    .await;
    back(
        &format!("/dashboard/w/{ws}/agents/{agent_id}/sources"),
        result,
    )
}

/// Live progress for the sources page's script: the agent's status, each
/// source's status and the unfinished jobs.
pub async fn training_json(
    State(state): State<AppState>,
    _s: Session,
    Path((ws, agent_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let (w, a) = agent_page(&state, &ws, &agent_id).await?;
    let list = state
        .app
        .sources(&w.principal, &a.id, &SourceFilter::default(), None, 100)
        .await?;
    let jobs = state.app.training_jobs(&w.principal, &a.id).await?;
    let body = json!({
        "agentStatus": a.status.as_str(),
        "sources": list.items.iter().map(|s| json!({
            "id": s.id, "status": s.status.as_str(), "pages": s.pages, "error": s.error,
        })).collect::<Vec<_>>(),
        "jobs": jobs.iter().filter(|j| !j.status.is_finished()).map(|j| json!({
            "sourceId": j.source_id, "status": j.status.as_str(), "stage": j.stage,
            "done": j.done, "total": j.total,
        })).collect::<Vec<_>>(),
    });
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response())
}
