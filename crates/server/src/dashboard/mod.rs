//! The operator dashboard: server-rendered HTML under `/dashboard`, over the same
//! use cases as the API. Signing in with the operator password (the instance
//! administrator) or a member's email and password opens a session
//! (an HttpOnly, SameSite=Strict cookie; Secure behind TLS) whose CSRF token every
//! form carries in `_csrf` and every script request in `x-csrf-token`. Forms post
//! and redirect (303) back with a notice; a little JavaScript (copy buttons, live
//! training progress, the streaming playground) sits on top of working HTML.

mod access;
mod agents;
mod auth;
mod helpdesk;
pub mod html;
mod knowledge;
mod leads;
mod members;
mod page;
mod templates;
mod workspaces;

use agentbase_core::{Agent, Error, Workspace};
use agentbase_service::Principal;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::AppState;
use crate::error::ApiError;
pub use auth::Session;
use html::{Nav, Notice, esc};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { redirect("/dashboard") }))
        .route("/dashboard", get(auth::home))
        .route("/dashboard/", get(auth::home))
        .route("/dashboard/login", get(auth::login_page).post(auth::login))
        .route("/dashboard/logout", post(auth::logout))
        .route("/dashboard/assets/{file}", get(asset))
        .merge(workspace_routes())
        .merge(agent_routes())
        .layer(axum::middleware::map_response(security_headers))
}

/// Workspaces, their keys, usage and members, and invitation links.
fn workspace_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/dashboard/workspaces",
            get(workspaces::list).post(workspaces::create),
        )
        .route("/dashboard/w/{ws}/plan", post(workspaces::set_plan))
        .route(
            "/dashboard/w/{ws}/keys",
            get(workspaces::keys).post(workspaces::create_key),
        )
        .route(
            "/dashboard/w/{ws}/keys/{keyId}/revoke",
            post(workspaces::revoke_key),
        )
        .route("/dashboard/w/{ws}/usage", get(workspaces::usage))
        .route(
            "/dashboard/w/{ws}/members",
            get(members::list).post(members::invite),
        )
        .route(
            "/dashboard/w/{ws}/members/{memberId}/reset",
            post(members::reset),
        )
        .route(
            "/dashboard/w/{ws}/members/{memberId}/remove",
            post(members::remove),
        )
        .route(
            "/dashboard/invite/{token}",
            get(members::link_page).post(members::accept),
        )
        .route("/dashboard/invite/{token}/join", post(members::join))
}

/// One agent's pages: settings, playground, conversations and handoff, knowledge,
/// tickets and leads.
fn agent_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/dashboard/w/{ws}/agents",
            get(agents::list).post(agents::create),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}",
            get(agents::settings).post(agents::update),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/delete",
            post(agents::delete),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/playground",
            get(agents::playground),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/playground/chat",
            post(agents::playground_chat),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/conversations",
            get(agents::conversations),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/conversations/{conversationId}",
            get(agents::thread),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/sources",
            get(knowledge::sources).merge(post(knowledge::add_source).layer(
                axum::extract::DefaultBodyLimit::max(
                    agentbase_core::knowledge::FILE_MAX_BYTES + 64 * 1024,
                ),
            )),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/sources/{sourceId}/delete",
            post(knowledge::delete_source),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/retrain",
            post(knowledge::retrain),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/auto-retrain",
            post(knowledge::auto_retrain),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/training.json",
            get(knowledge::training_json),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/tickets",
            get(helpdesk::tickets),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/leads",
            get(leads::leads),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/leads.csv",
            get(leads::export),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/lead-form",
            post(leads::save_form),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/conversations/{conversationId}/take-over",
            post(helpdesk::take_over),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/conversations/{conversationId}/reply",
            post(helpdesk::reply),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/conversations/{conversationId}/hand-back",
            post(helpdesk::hand_back),
        )
        .route(
            "/dashboard/w/{ws}/agents/{agentId}/conversations/{conversationId}/live.json",
            get(helpdesk::live),
        )
}

/// Scripts, styles, fetches and forms from this origin only; no framing; no
/// plugins. The pages have no inline script or style, so nothing needs
/// `'unsafe-inline'`: text that slipped past escaping still could not run.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

const CSS: &str = include_str!("../../assets/dashboard.css");
const JS: &str = include_str!("../../assets/dashboard.js");

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "dashboard.css" => (CSS, "text/css; charset=utf-8"),
        "dashboard.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return Problem::not_found().into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// A 303 to `to`: the answer to every successful form post.
pub fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Back to `to` with a notice (`ok`) or the error's message (`error`).
pub fn back(to: &str, result: Result<String, Problem>) -> Response {
    let (key, message) = match result {
        Ok(m) => ("ok", m),
        Err(p) => ("error", p.message),
    };
    let sep = if to.contains('?') { '&' } else { '?' };
    redirect(&format!("{to}{sep}{key}={}", html::url_value(&message)))
}

/// An HTML page response that is never cached (pages show secrets and live state).
pub fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// A failure shown to the operator: its status and a readable message.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub message: String,
}

impl Problem {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "That page does not exist.")
    }

    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<ApiError> for Problem {
    fn from(e: ApiError) -> Self {
        let mut message = e.message;
        if let Some(details) = e.details {
            let parts: Vec<String> = details.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            message = format!("{message}: {}", parts.join("; "));
        }
        Self {
            status: e.status,
            message,
        }
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let title = if self.status == StatusCode::NOT_FOUND {
            "Not found"
        } else {
            "Something is not right"
        };
        let notice = Notice::default();
        let shell = templates::Shell {
            title,
            csrf: None,
            notice: &notice,
            nav: None,
        };
        let page = minijinja::context! { message => &self.message };
        // The error template has its own test; should it fail anyway, the
        // message still shows (rendering a second problem page could loop).
        let html = templates::render("error.html", &shell, page).unwrap_or_else(|_| {
            format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · agentbase</title></head><body><p>{}</p></body></html>",
                esc(&self.message)
            )
        });
        html_response(self.status, html)
    }
}

/// A workspace the signed-in operator acts in, with the principal the service's
/// use cases expect (the dashboard stands in for an API key).
pub struct Ws {
    pub workspace: Workspace,
    pub principal: Principal,
}

pub const DASHBOARD_KEY: &str = "dashboard";

pub async fn workspace(state: &AppState, id: &str) -> Result<Ws, Problem> {
    let workspace = state
        .app
        .accounts()
        .workspace(id)
        .await?
        .ok_or_else(Problem::not_found)?;
    let principal = Principal::acting_in(&workspace, DASHBOARD_KEY);
    Ok(Ws {
        workspace,
        principal,
    })
}

/// The navigation of a workspace's page, or of one of its agents' pages.
pub fn nav<'a>(w: &'a Ws, agent: Option<&'a Agent>, current: &'a str) -> Nav<'a> {
    Nav {
        workspace: Some((&w.workspace.id, &w.workspace.name)),
        agent: agent.map(|a| (a.id.as_str(), a.name.as_str())),
        current,
    }
}

/// The non-blank lines of a textarea, trimmed.
pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Renders a signed-in page from its template (`page`: the template's own context).
pub fn render_template(
    s: &Session,
    title: &str,
    nav: &Nav,
    notice: &Notice,
    template: &str,
    page: impl serde::Serialize,
) -> Result<Response, Problem> {
    let shell = templates::Shell {
        title,
        csrf: Some(&s.csrf_token),
        notice,
        nav: Some(nav.into()),
    };
    let html = templates::render(template, &shell, page)?;
    Ok(html_response(StatusCode::OK, html))
}
