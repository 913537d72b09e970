//! The workspace's members page (invite, reset a password, remove) and the
//! one-time link page where an invited or reset member chooses a password, or,
//! invited with an account that has one, signs in and joins. A new link is
//! rendered directly (`no-store`), never put in a redirect's URL, like a new API
//! key. Who may open these routes is `access.rs`; who may manage whom,
//! `core::member::may_manage` in the service.

use agentbase_core::ids;
use agentbase_core::member::{Acting, LinkKind, Member, Role, may_manage};
use agentbase_service::OpenLink;
use agentbase_service::dashboard::SignedIn;
use agentbase_service::members::MemberLink;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

use super::auth::{self, Form, Posted, Session, double_submit_ok, secure, set_cookie};
use super::html::{Nav, Notice, when};
use super::page::{WsPage, WsPosted};
use super::templates::{self, Shell};
use super::{Problem, Ws, back, html_response, render_template};
use crate::AppState;
use crate::extract::form_pairs;

const LINK_COOKIE: &str = "agentbase_link";
const LINK_PATH: &str = "/dashboard/invite";
/// Where a followed link leads.
const WORKSPACES: &str = "/dashboard/workspaces";

fn members_url(ws: &str) -> String {
    format!("/dashboard/w/{ws}/members")
}

/// The page; `link` is a link just made (its URL), shown once with who it is for.
fn page(
    s: &Session,
    w: &Ws,
    members: &[Member],
    link: Option<(&str, &str)>,
    notice: &Notice,
) -> Result<Response, Problem> {
    let acting = s.acting();
    let page = MembersContext {
        ws: &w.workspace.id,
        link: link.map(|(email, url)| NewLink { email, url }),
        members: members.iter().map(|m| MemberRow::of(m, acting)).collect(),
        may_invite: may_manage(acting, Role::Member),
        roles: Role::ALL.iter().map(|r| [r.as_str(); 2]).collect(),
    };
    let nav = Nav {
        workspace: Some((&w.workspace.id, &w.workspace.name)),
        agent: None,
        current: "members",
    };
    render_template(s, "Members", &nav, notice, "members.html", page)
}

/// What the members template shows.
#[derive(Serialize)]
struct MembersContext<'a> {
    ws: &'a str,
    link: Option<NewLink<'a>>,
    members: Vec<MemberRow<'a>>,
    may_invite: bool,
    roles: Vec<[&'static str; 2]>,
}

/// A one-time link just made, and who it is for.
#[derive(Serialize)]
struct NewLink<'a> {
    email: &'a str,
    url: &'a str,
}

/// A member as the table shows them; `manageable` when the viewer may reset or
/// remove them.
#[derive(Serialize)]
struct MemberRow<'a> {
    id: &'a str,
    name: &'a str,
    email: &'a str,
    role: &'static str,
    status: &'static str,
    joined: String,
    manageable: bool,
}

impl<'a> MemberRow<'a> {
    fn of(m: &'a Member, acting: Acting) -> Self {
        MemberRow {
            id: &m.id,
            name: &m.name,
            email: &m.email,
            role: m.role.as_str(),
            status: if m.active { "active" } else { "invited" },
            joined: when(m.joined_at),
            manageable: may_manage(acting, m.role),
        }
    }
}

/// What an invitation says it did: the same whether the email has an account.
fn invited_notice(invited: &MemberLink) -> String {
    let m = &invited.member;
    format!("{} invited as {}.", m.email, m.role)
}

/// The page after an invitation or a reset: its link, shown once.
fn changed_page(
    s: &Session,
    w: &Ws,
    changed: &MemberLink,
    notice: &Notice,
) -> Result<Response, Problem> {
    let link = (changed.member.email.as_str(), changed.link_url.as_str());
    page(s, w, &changed.members, Some(link), notice)
}

pub async fn list(
    State(state): State<AppState>,
    p: WsPage,
    notice: Notice,
) -> Result<Response, Problem> {
    let members = state.app.members().list(p.ws()).await?;
    page(&p.session, &p.w, &members, None, &notice)
}

pub async fn invite(
    State(state): State<AppState>,
    Path(ws): Path<String>,
    WsPosted { w, form, session }: WsPosted,
) -> Result<Response, Problem> {
    let w = w?;
    let f = &form;
    let (email, name) = (f.get("email").unwrap_or(""), f.get("name").unwrap_or(""));
    let role = f.get("role").unwrap_or("member");
    let invited = (state.app.members()).invite_and_list(session.acting(), &ws, email, name, role);
    let invited = match invited.await {
        Ok(i) => i,
        Err(e) => return Ok(back(&members_url(&ws), Err(e.into()))),
    };
    let notice = Notice::ok(invited_notice(&invited));
    changed_page(&session, &w, &invited, &notice)
}

pub async fn reset(
    State(state): State<AppState>,
    Path((ws, member_id)): Path<(String, String)>,
    WsPosted { w, session, .. }: WsPosted,
) -> Result<Response, Problem> {
    let w = w?;
    let reset = (state.app.members()).reset_and_list(session.acting(), &ws, &member_id);
    let reset = match reset.await {
        Ok(r) => r,
        Err(e) => return Ok(back(&members_url(&ws), Err(e.into()))),
    };
    let notice = Notice::ok(format!(
        "{}'s password no longer works and they are signed out; the link below sets a new one.",
        reset.member.email
    ));
    changed_page(&session, &w, &reset, &notice)
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
    back(&members_url(&ws), result)
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
    let page = LinkContext {
        token,
        form_csrf: &csrf,
        email: to.email,
        invite: to.invite,
        workspace: to.workspace,
        name,
        min: agentbase_core::password::MIN_LEN,
    };
    let mut r = html_response(status, templates::render("link.html", &shell, page)?);
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(LINK_COOKIE, &csrf, LINK_PATH, 3600, secure(state, headers)),
    );
    Ok(r)
}

/// What the link template shows.
#[derive(Serialize)]
struct LinkContext<'a> {
    token: &'a str,
    form_csrf: &'a str,
    email: &'a str,
    invite: Option<&'a str>,
    workspace: &'a str,
    name: &'a str,
    min: usize,
}

/// The invitation or reset the path's `{token}` names, while it can still be
/// used; otherwise the page saying it is gone.
pub struct Link {
    token: String,
    open: OpenLink,
}

impl FromRequestParts<AppState> for Link {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let Path(token) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| gone())?;
        let open = state.app.members().open_link(&token).await?;
        Ok(Link {
            open: open.ok_or_else(gone)?,
            token,
        })
    }
}

pub async fn link_page(
    State(state): State<AppState>,
    Link { token, open }: Link,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    if open.kind == LinkKind::Invite && open.account.has_password {
        return join_page(&state, &headers, &token, &open).await;
    }
    let to = LinkFor {
        email: &open.account.email,
        invite: Some(match open.kind {
            LinkKind::Invite => "you are invited",
            LinkKind::Reset => "a new password for your account",
        }),
        workspace: &open.workspace.name,
    };
    let name = &open.account.name;
    link_form(&state, &headers, &token, name, &to, StatusCode::OK, None)
}

pub async fn accept(
    State(state): State<AppState>,
    Link { token, open }: Link,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let form = Form(form_pairs(&String::from_utf8_lossy(&body)));
    let accepted = async {
        check_link_form(&headers, &form)?;
        let (password, name) = (form.raw("password"), form.get("name"));
        let accepted = state.app.members().accept_link(&token, password, name);
        Ok::<_, Problem>(accepted.await?)
    };
    match accepted.await {
        Ok(s) => Ok(link_signed_in(&state, &headers, &s)),
        Err(p) => retry(&state, &headers, &token, &open, &form, p),
    }
}

/// Signed in by a link: the session cookie set, the link form's cleared.
fn link_signed_in(state: &AppState, headers: &HeaderMap, s: &SignedIn) -> Response {
    auth::signed_in_response(state, headers, s, WORKSPACES, LINK_COOKIE, LINK_PATH)
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

/// What the join template shows.
#[derive(Serialize)]
struct JoinContext<'a> {
    token: &'a str,
    email: &'a str,
    workspace: &'a str,
    /// The session's CSRF token when the account the invitation is for is signed
    /// in (the join button); otherwise the page links to the sign-in.
    join_csrf: Option<&'a str>,
    sign_in: String,
}

/// An invitation for an account that has a password: its owner accepts it from
/// their own session, so whoever holds the link cannot join in their name.
async fn join_page(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    open: &OpenLink,
) -> Result<Response, Problem> {
    let session = auth::session_of(state, headers).await?;
    let join_csrf = session
        .as_ref()
        .filter(|s| s.member_id.as_deref() == Some(open.account.id.as_str()))
        .map(|s| s.csrf_token.as_str());
    let notice = Notice::default();
    let shell = Shell {
        title: "Join a workspace",
        csrf: None,
        notice: &notice,
        nav: None,
    };
    let page = JoinContext {
        token,
        email: &open.account.email,
        workspace: &open.workspace.name,
        join_csrf,
        sign_in: format!(
            "/dashboard/login?next={}",
            super::html::url_value(&format!("{LINK_PATH}/{token}"))
        ),
    };
    Ok(html_response(
        StatusCode::OK,
        templates::render("join.html", &shell, page)?,
    ))
}

/// Accepts an invitation from the session of the account it is for.
pub async fn join(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Posted { session, .. }: Posted,
) -> Result<Response, Problem> {
    let Some(member) = &session.member else {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "The instance administrator is in every workspace already.",
        ));
    };
    let ws = state.app.members().join_by_link(&token, &member.id).await?;
    Ok(super::redirect(&format!("/dashboard/w/{ws}")))
}
