//! What dashboard handlers start from, as extractors: the workspace of the path
//! ([`Ws`]), a signed-in page in it ([`WsPage`]), a page of one of its agents
//! ([`AgentPage`]), and the notice a redirect left in the query ([`Notice`]).
//! Each resolves the session first (the access check runs there), then the
//! workspace, then the agent, and refuses with the same page a handler would
//! have shown: the sign-in redirect, a 403, or "That page does not exist".

use std::collections::HashMap;
use std::convert::Infallible;

use agentbase_core::Agent;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::auth::{Form, Posted, Session};
use super::html::Notice;
use super::{Problem, Ws, nav, render_template, workspace};
use crate::AppState;
use crate::extract::QueryMap;

/// A parameter of the matched route's path (`ws`, `agentId`, …).
async fn path_param(parts: &mut Parts, state: &AppState, name: &str) -> Result<String, Problem> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|_| Problem::not_found())?;
    params.get(name).cloned().ok_or_else(Problem::not_found)
}

/// The workspace `{ws}` of the path.
impl FromRequestParts<AppState> for Ws {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let id = path_param(parts, state, "ws").await?;
        workspace(state, &id).await
    }
}

/// A signed-in page of the workspace of the path.
pub struct WsPage {
    pub session: Session,
    pub w: Ws,
}

impl FromRequestParts<AppState> for WsPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, state).await?;
        let w = Ws::from_request_parts(parts, state).await;
        let w = w.map_err(IntoResponse::into_response)?;
        Ok(WsPage { session, w })
    }
}

impl WsPage {
    /// The workspace's id.
    pub fn ws(&self) -> &str {
        &self.w.workspace.id
    }

    /// Renders the page (`current`: its tab) from its template and context.
    pub fn render(
        &self,
        title: &str,
        current: &str,
        notice: &Notice,
        template: &str,
        page: impl Serialize,
    ) -> Result<Response, Problem> {
        let nav = nav(&self.w, None, current);
        render_template(&self.session, title, &nav, notice, template, page)
    }
}

/// A signed-in page of an agent (`{agentId}`) of the workspace of the path; an
/// agent of another workspace is not found.
pub struct AgentPage {
    pub session: Session,
    pub w: Ws,
    pub agent: Agent,
}

impl FromRequestParts<AppState> for AgentPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let WsPage { session, w } = WsPage::from_request_parts(parts, state).await?;
        let agent = async {
            let id = path_param(parts, state, "agentId").await?;
            Ok::<_, Problem>(state.app.agents().get(&w.workspace.id, &id).await?)
        };
        let agent = agent.await.map_err(IntoResponse::into_response)?;
        Ok(AgentPage { session, w, agent })
    }
}

impl AgentPage {
    /// The workspace's id.
    pub fn ws(&self) -> &str {
        &self.w.workspace.id
    }

    /// Renders the page (`current`: its tab) from its template and context.
    pub fn render(
        &self,
        title: &str,
        current: &str,
        notice: &Notice,
        template: &str,
        page: impl Serialize,
    ) -> Result<Response, Problem> {
        let nav = nav(&self.w, Some(&self.agent), current);
        render_template(&self.session, title, &nav, notice, template, page)
    }
}

/// A form posted in the workspace of the path: [`Posted`] (the session, then the
/// form with its CSRF token checked), and the workspace, looked up once the
/// session passed and kept as a result, so a missing workspace goes back with
/// the error like any other failure of the form.
pub struct WsPosted {
    pub session: Session,
    pub form: Form,
    pub w: Result<Ws, Problem>,
}

impl FromRequest<AppState> for WsPosted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let w = Ws::from_request_parts(&mut parts, state).await;
        let posted = Posted::read(session, Request::from_parts(parts, body), state).await?;
        Ok(WsPosted {
            session: posted.session,
            form: posted.form,
            w,
        })
    }
}

/// The notice a redirect left in the query (`ok`, `error`).
impl<S: Send + Sync> FromRequestParts<S> for Notice {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let q = QueryMap::from_request_parts(parts, state).await?;
        Ok(Notice {
            ok: q.get("ok").map(str::to_owned),
            error: q.get("error").map(str::to_owned),
        })
    }
}
