//! The workspace's members page (invite, reset a password, remove) and the
//! one-time link page where an invited or reset member chooses a password. A new
//! link is rendered directly (`no-store`), never put in a redirect's URL, like a
//! new API key. Who may open these routes is `access.rs`; who may manage whom,
//! `core::member::may_manage` in the service.

use std::fmt::Write;

use agentbase_core::ids;
use agentbase_core::keys::same_secret;
use agentbase_core::member::{Member, Role, may_manage};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::auth::{
    Form, Posted, Session, cookie, cross_site, secure, set_cookie, signed_in_response,
};
use super::html::{self, Nav, Notice, copyable, csrf_field, esc, table, when};
use super::workspaces::notice;
use super::{Problem, Ws, back, html_response, render, workspace};
use crate::AppState;
use crate::extract::{QueryMap, form_pairs};

const LINK_COOKIE: &str = "agentbase_link";
const LINK_PATH: &str = "/dashboard/invite";

fn role_options() -> String {
    html::options(
        Role::ALL.iter().map(|r| (r.as_str(), r.as_str())),
        Role::Member.as_str(),
    )
}

/// The page; `link` is a link just made, shown once with who it is for.
fn page(
    state: &AppState,
    s: &Session,
    w: &Ws,
    members: &[Member],
    link: Option<(&str, &str)>,
    notice: &Notice,
) -> Response {
    let base = format!("/dashboard/w/{}/members", esc(&w.workspace.id));
    let acting = s.acting();
    let mut body = String::new();
    if let Some((email, token)) = link {
        let _ = write!(
            body,
            "<section class=\"card reveal\" aria-labelledby=\"new-link\"><h2 id=\"new-link\">Link for {}</h2>\
             <p>Send this link to them: it is shown <strong>only once</strong>, works once, and expires in 7 days. \
             Following it, they choose their password.</p>{}</section>",
            esc(email),
            copyable("member-link", &state.app.link_url(token))
        );
    }
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            let actions = if may_manage(acting, m.role) {
                let form = |action: &str, label: &str, class: &str| {
                    format!(
                        "<form class=\"inline\" method=\"post\" action=\"{base}/{}/{action}\">{}\
                         <button class=\"{class}\" type=\"submit\" aria-label=\"{label} {}\">{label}</button></form>",
                        esc(&m.id),
                        csrf_field(&s.csrf_token),
                        esc(&m.email),
                    )
                };
                format!(
                    "{} {}",
                    form("reset", "Reset password", ""),
                    form("remove", "Remove", "danger")
                )
            } else {
                String::new()
            };
            vec![
                esc(&m.name),
                esc(&m.email),
                m.role.as_str().to_owned(),
                if m.active { "active" } else { "invited" }.to_owned(),
                when(m.joined_at),
                actions,
            ]
        })
        .collect();
    body.push_str(&table(
        "Members",
        &["Name", "Email", "Role", "Status", "Joined", ""],
        &rows,
        "No members yet: only the instance administrator signs in here.",
    ));
    if may_manage(acting, Role::Member) {
        let _ = write!(
            body,
            "<section class=\"card\"><h2>Invite a member</h2><form method=\"post\" action=\"{base}\">{}\
             <label for=\"member-email\">Email</label><input id=\"member-email\" name=\"email\" type=\"email\" required maxlength=\"254\">\
             <label for=\"member-name\">Name</label><input id=\"member-name\" name=\"name\" maxlength=\"100\">\
             <label for=\"member-role\">Role</label><select id=\"member-role\" name=\"role\">{}</select>\
             <button type=\"submit\">Invite</button></form>\
             <p class=\"hint\">Owners manage everyone; admins manage admins, members and API keys; members use \
             agents, their knowledge and conversations.</p></section>",
            csrf_field(&s.csrf_token),
            role_options()
        );
    }
    let nav = Nav {
        workspace: Some((&w.workspace.id, &w.workspace.name)),
        agent: None,
        current: "members",
    };
    render(s, "Members", &nav, notice, &body)
}

pub async fn list(
    State(state): State<AppState>,
    s: Session,
    Path(ws): Path<String>,
    q: QueryMap,
) -> Result<Response, Problem> {
    let w = workspace(&state, &ws).await?;
    let members = state.app.members(&ws).await?;
    Ok(page(&state, &s, &w, &members, None, &notice(&q)))
}

pub async fn invite(
    State(state): State<AppState>,
    Path(ws): Path<String>,
    p: Posted,
) -> Result<Response, Problem> {
    let w = workspace(&state, &ws).await?;
    let invited = state
        .app
        .invite_member(
            p.session.acting(),
            &ws,
            p.form.get("email").unwrap_or(""),
            p.form.get("name").unwrap_or(""),
            p.form.get("role").unwrap_or("member"),
        )
        .await;
    let invited = match invited {
        Ok(i) => i,
        Err(e) => return Ok(back(&format!("/dashboard/w/{ws}/members"), Err(e.into()))),
    };
    let members = state.app.members(&ws).await?;
    let m = &invited.member;
    let notice = Notice {
        ok: Some(match invited.token {
            Some(_) => format!("{} invited as {}.", m.email, m.role),
            None => format!(
                "{} already has an account and is now a member ({}).",
                m.email, m.role
            ),
        }),
        error: None,
    };
    let link = invited.token.as_deref().map(|t| (m.email.as_str(), t));
    Ok(page(&state, &p.session, &w, &members, link, &notice))
}

pub async fn reset(
    State(state): State<AppState>,
    Path((ws, member_id)): Path<(String, String)>,
    p: Posted,
) -> Result<Response, Problem> {
    let w = workspace(&state, &ws).await?;
    let (m, token) = match state
        .app
        .reset_member_password(p.session.acting(), &ws, &member_id)
        .await
    {
        Ok(r) => r,
        Err(e) => return Ok(back(&format!("/dashboard/w/{ws}/members"), Err(e.into()))),
    };
    let members = state.app.members(&ws).await?;
    let notice = Notice {
        ok: Some(format!(
            "{}'s password no longer works and they are signed out; the link below sets a new one.",
            m.email
        )),
        error: None,
    };
    Ok(page(
        &state,
        &p.session,
        &w,
        &members,
        Some((&m.email, &token)),
        &notice,
    ))
}

pub async fn remove(
    State(state): State<AppState>,
    Path((ws, member_id)): Path<(String, String)>,
    p: Posted,
) -> Response {
    let result = state
        .app
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

/// The password form of a one-time link, with its own double-submit CSRF token
/// (the visitor has no session yet).
fn link_form(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    name: &str,
    intro: &str,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let csrf = ids::alphanumeric(32);
    let body = format!(
        "<form class=\"card narrow\" method=\"post\" action=\"{LINK_PATH}/{}\">{}<p>{}</p>\
         <label for=\"name\">Your name</label><input id=\"name\" name=\"name\" value=\"{}\" maxlength=\"100\">\
         <label for=\"password\">Choose a password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"{min}\" required autofocus>\
         <label for=\"confirm\">Repeat it</label>\
         <input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\" minlength=\"{min}\" required>\
         <button type=\"submit\">Set password and sign in</button>\
         <p class=\"hint\">At least {min} characters.</p></form>",
        esc(token),
        csrf_field(&csrf),
        intro,
        esc(name),
        min = agentbase_core::password::MIN_LEN,
    );
    let notice = Notice { ok: None, error };
    let mut r = html_response(
        status,
        html::page("Set your password", None, None, &notice, &body),
    );
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(LINK_COOKIE, &csrf, LINK_PATH, 3600, secure(state, headers)),
    );
    r
}

pub async fn link_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let link = state.app.open_link(&token).await?.ok_or_else(gone)?;
    let intro = format!(
        "{} — {} in <strong>{}</strong>.",
        esc(&link.account.email),
        match link.kind {
            agentbase_core::member::LinkKind::Invite => "you are invited",
            agentbase_core::member::LinkKind::Reset => "a new password for your account",
        },
        esc(&link.workspace.name)
    );
    Ok(link_form(
        &state,
        &headers,
        &token,
        &link.account.name,
        &intro,
        StatusCode::OK,
        None,
    ))
}

pub async fn accept(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let form = Form(form_pairs(&String::from_utf8_lossy(&body)));
    let csrf_ok = match (cookie(&headers, LINK_COOKIE), form.get("_csrf")) {
        (Some(c), Some(f)) => same_secret(&c, f),
        _ => false,
    };
    let link = state.app.open_link(&token).await?.ok_or_else(gone)?;
    let again = |status, message: &str| {
        link_form(
            &state,
            &headers,
            &token,
            form.get("name").unwrap_or(&link.account.name),
            &esc(&link.account.email),
            status,
            Some(message.to_owned()),
        )
    };
    if cross_site(&headers) || !csrf_ok {
        return Ok(again(
            StatusCode::FORBIDDEN,
            "This form expired. Try again.",
        ));
    }
    if form.raw("password") != form.raw("confirm") {
        return Ok(again(StatusCode::BAD_REQUEST, "The two passwords differ."));
    }
    match state
        .app
        .accept_link(&token, form.raw("password"), form.get("name"))
        .await
    {
        Ok(signed_in) => Ok(signed_in_response(
            &state,
            &headers,
            &signed_in,
            "/dashboard/workspaces",
            LINK_COOKIE,
            LINK_PATH,
        )),
        Err(e) => {
            let p = Problem::from(e);
            Ok(again(p.status, &p.message))
        }
    }
}
