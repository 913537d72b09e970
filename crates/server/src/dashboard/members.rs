//! The workspace's members page (invite, reset a password, remove) and the
//! one-time link page where an invited or reset member chooses a password. A new
//! link is rendered directly (`no-store`), never put in a redirect's URL, like a
//! new API key. Who may open these routes is `access.rs`; who may manage whom,
//! `core::member::may_manage` in the service.

use agentbase_core::ids;
use agentbase_core::member::{Member, Role, may_manage};
use agentbase_service::OpenLink;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use super::auth::{
    Form, Posted, Session, double_submit_ok, secure, set_cookie, signed_in_response,
};
use super::html::{Nav, Notice, when};
use super::templates::{self, Shell};
use super::workspaces::notice;
use super::{Problem, Ws, back, html_response, render_template, workspace};
use crate::AppState;
use crate::extract::{QueryMap, form_pairs};

const LINK_COOKIE: &str = "agentbase_link";
const LINK_PATH: &str = "/dashboard/invite";

/// The page; `link` is a link just made, shown once with who it is for.
fn page(
    state: &AppState,
    s: &Session,
    w: &Ws,
    members: &[Member],
    link: Option<(&str, &str)>,
    notice: &Notice,
) -> Result<Response, Problem> {
    let acting = s.acting();
    let members: Vec<_> = members
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "name": m.name,
                "email": m.email,
                "role": m.role.as_str(),
                "status": if m.active { "active" } else { "invited" },
                "joined": when(m.joined_at),
                "manageable": may_manage(acting, m.role),
            })
        })
        .collect();
    let roles: Vec<[&str; 2]> = Role::ALL.iter().map(|r| [r.as_str(); 2]).collect();
    let link = link
        .map(|(email, token)| json!({"email": email, "url": state.app.members().link_url(token)}));
    let page = json!({
        "ws": w.workspace.id,
        "link": link,
        "members": members,
        "may_invite": may_manage(acting, Role::Member),
        "roles": roles,
    });
    let nav = Nav {
        workspace: Some((&w.workspace.id, &w.workspace.name)),
        agent: None,
        current: "members",
    };
    render_template(s, "Members", &nav, notice, "members.html", page)
}

pub async fn list(
    State(state): State<AppState>,
    s: Session,
    Path(ws): Path<String>,
    q: QueryMap,
) -> Result<Response, Problem> {
    let w = workspace(&state, &ws).await?;
    let members = state.app.members().list(&ws).await?;
    page(&state, &s, &w, &members, None, &notice(&q))
}

pub async fn invite(
    State(state): State<AppState>,
    Path(ws): Path<String>,
    p: Posted,
) -> Result<Response, Problem> {
    let w = workspace(&state, &ws).await?;
    let f = &p.form;
    let (email, name) = (f.get("email").unwrap_or(""), f.get("name").unwrap_or(""));
    let role = f.get("role").unwrap_or("member");
    let acting = p.session.acting();
    let invited = match state
        .app
        .members()
        .invite_member(acting, &ws, email, name, role)
        .await
    {
        Ok(i) => i,
        Err(e) => return Ok(back(&format!("/dashboard/w/{ws}/members"), Err(e.into()))),
    };
    let members = state.app.members().list(&ws).await?;
    let m = &invited.member;
    let notice = Notice::ok(match invited.token {
        Some(_) => format!("{} invited as {}.", m.email, m.role),
        None => format!(
            "{} already has an account and is now a member ({}).",
            m.email, m.role
        ),
    });
    let link = invited.token.as_deref().map(|t| (m.email.as_str(), t));
    page(&state, &p.session, &w, &members, link, &notice)
}

pub async fn reset(
    State(state): State<AppState>,
    Path((ws, member_id)): Path<(String, String)>,
    p: Posted,
) -> Result<Response, Problem> {
    let w = workspace(&state, &ws).await?;
    let reset = state
        .app
        .members()
        .reset_member_password(p.session.acting(), &ws, &member_id);
    let (m, token) = match reset.await {
        Ok(r) => r,
        Err(e) => return Ok(back(&format!("/dashboard/w/{ws}/members"), Err(e.into()))),
    };
    let members = state.app.members().list(&ws).await?;
    let notice = Notice::ok(format!(
        "{}'s password no longer works and they are signed out; the link below sets a new one.",
        m.email
    ));
    let link = Some((m.email.as_str(), token.as_str()));
    page(&state, &p.session, &w, &members, link, &notice)
}

pub async fn remove(
    State(state): State<AppState>,
    Path((ws, member_id)): Path<(String, String)>,
    p: Posted,
) -> Response {
    let result = state
        .app
        .members()
        .remove_member(p.session.acting(), &ws, &member_id)
        .await
        .map(|m| format!("{} is no longer a member.", m.email))
        .map_err(Problem::from);
    back(&format!("/dashboard/w/{ws}/members"), result)
}

fn gone() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "This link has expired or was already used. Ask an administrator of the workspace for a new one.",
    )
}

/// Who a one-time link is for, as its password form says it.
struct LinkFor<'a> {
    email: &'a str,
    /// What the link is for ("you are invited", …); `None` when the form is
    /// shown again after a failed attempt.
    invite: Option<&'a str>,
    workspace: &'a str,
}

/// The password form of a one-time link, with its own double-submit CSRF token
/// (the visitor has no session yet).
fn link_form(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    name: &str,
    to: &LinkFor,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, Problem> {
    let csrf = ids::alphanumeric(32);
    let notice = Notice { ok: None, error };
    let shell = Shell {
        title: "Set your password",
        csrf: None,
        notice: &notice,
        nav: None,
    };
    let page = json!({
        "token": token,
        "form_csrf": csrf,
        "email": to.email,
        "invite": to.invite,
        "workspace": to.workspace,
        "name": name,
        "min": agentbase_core::password::MIN_LEN,
    });
    let mut r = html_response(status, templates::render("link.html", &shell, page)?);
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(LINK_COOKIE, &csrf, LINK_PATH, 3600, secure(state, headers)),
    );
    Ok(r)
}

/// The invitation or reset `token` names, or the page saying it is gone.
async fn open_link(state: &AppState, token: &str) -> Result<OpenLink, Problem> {
    state.app.members().open_link(token).await?.ok_or_else(gone)
}

pub async fn link_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let link = open_link(&state, &token).await?;
    let to = LinkFor {
        email: &link.account.email,
        invite: Some(match link.kind {
            agentbase_core::member::LinkKind::Invite => "you are invited",
            agentbase_core::member::LinkKind::Reset => "a new password for your account",
        }),
        workspace: &link.workspace.name,
    };
    link_form(
        &state,
        &headers,
        &token,
        &link.account.name,
        &to,
        StatusCode::OK,
        None,
    )
}

pub async fn accept(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let form = Form(form_pairs(&String::from_utf8_lossy(&body)));
    let link = open_link(&state, &token).await?;
    let accepted = match check_link_form(&headers, &form) {
        Ok(()) => {
            let (password, name) = (form.raw("password"), form.get("name"));
            state
                .app
                .members()
                .accept_link(&token, password, name)
                .await
                .map_err(Problem::from)
        }
        Err(p) => Err(p),
    };
    match accepted {
        Ok(signed_in) => {
            let to = "/dashboard/workspaces";
            let r = signed_in_response(&state, &headers, &signed_in, to, LINK_COOKIE, LINK_PATH);
            Ok(r)
        }
        Err(p) => retry(&state, &headers, &token, &link, &form, p),
    }
}

/// The link's form again after a failed attempt, saying what went wrong.
fn retry(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    link: &OpenLink,
    form: &Form,
    p: Problem,
) -> Result<Response, Problem> {
    let to = LinkFor {
        email: &link.account.email,
        invite: None,
        workspace: &link.workspace.name,
    };
    let name = form.get("name").unwrap_or(&link.account.name);
    link_form(state, headers, token, name, &to, p.status, Some(p.message))
}

/// A link's password form is refused when it comes from another site or without its
/// CSRF cookie, or when its two passwords differ.
fn check_link_form(headers: &HeaderMap, form: &Form) -> Result<(), Problem> {
    if !double_submit_ok(headers, form, LINK_COOKIE) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "This form expired. Try again.",
        ));
    }
    if form.raw("password") != form.raw("confirm") {
        return Err(Problem::bad("The two passwords differ."));
    }
    Ok(())
}
