//! Signing in and out, the session extractor, and CSRF checks.

use agentbase_core::ids;
use agentbase_core::keys::same_secret;
use agentbase_core::member::{Acting, Role};
use agentbase_service::DashboardSession;
use agentbase_service::dashboard::SignedIn;
use agentbase_service::members::SignInAttempt;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

use super::html::{self, Notice};
use super::templates::{self, Shell};
use super::{Problem, html_response, redirect};
use crate::AppState;
use crate::extract::{QueryMap, form_pairs};
use crate::layers::client_ip;

const SESSION_COOKIE: &str = "agentbase_session";
const LOGIN_COOKIE: &str = "agentbase_login";

/// A signed-in operator: the instance administrator (`member` is `None`) or a
/// workspace member.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub csrf_token: String,
    pub member: Option<SignedMember>,
}

/// The member behind a session, with their role in the workspace of the path
/// (when the path names one; the access check has passed by then).
#[derive(Debug, Clone)]
pub struct SignedMember {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Option<Role>,
}

impl Session {
    /// Who is acting, as the member use cases take it.
    pub fn acting(&self) -> Acting {
        match &self.member {
            None => Acting::Administrator,
            Some(m) => Acting::As(m.role.unwrap_or(Role::Member)),
        }
    }
}

pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Whether the request came over TLS (directly or through a proxy saying so).
pub(super) fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state
        .app
        .settings()
        .server
        .public_url
        .starts_with("https://")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

pub(super) fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
    secure: bool,
) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("cookie values are alphanumeric")
}

/// A cross-site request (by its `Origin`) is refused before any token is read:
/// defence in depth beside the SameSite cookie and the CSRF token.
pub(super) fn cross_site(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    origin_host.is_none() || origin_host != host
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let token = cookie(&parts.headers, SESSION_COOKIE).unwrap_or_default();
        let found = match state.app.sessions().dashboard_session(&token).await {
            // A member's session lasts while their account does.
            Ok(Some(s)) => match s.member_id {
                None => Ok(Some((s.csrf_token, None))),
                Some(id) => state.app.members().member_account(&id).await.map(|a| {
                    a.map(|a| {
                        let m = SignedMember {
                            id: a.id,
                            email: a.email,
                            name: a.name,
                            role: None,
                        };
                        (s.csrf_token, Some(m))
                    })
                }),
            },
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        match found {
            Ok(Some((csrf_token, member))) => {
                let mut session = Session {
                    token,
                    csrf_token,
                    member,
                };
                super::access::check(parts, state, &mut session)
                    .await
                    .map_err(IntoResponse::into_response)?;
                Ok(session)
            }
            Ok(None) if parts.method == Method::GET => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/dashboard", |p| p.as_str());
                Err(redirect(&format!(
                    "/dashboard/login?next={}",
                    html::url_value(next)
                )))
            }
            Ok(None) => Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "Your session has ended. Sign in again.",
            )
            .into_response()),
            Err(e) => Err(Problem::from(e).into_response()),
        }
    }
}

impl Session {
    /// Checks a presented CSRF token (a form's `_csrf` or the `x-csrf-token`
    /// header of a script request).
    pub fn check_csrf(&self, headers: &HeaderMap, presented: Option<&str>) -> Result<(), Problem> {
        let presented =
            presented.or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
        if cross_site(headers) || !presented.is_some_and(|p| same_secret(p, &self.csrf_token)) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from the dashboard. Reload the page and try again.",
            ));
        }
        Ok(())
    }
}

/// A posted `application/x-www-form-urlencoded` form from a signed-in operator,
/// its CSRF token checked.
pub struct Posted {
    pub session: Session,
    pub form: Form,
}

#[derive(Debug, Default)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// The trimmed value, `None` when absent or blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value as typed (untrimmed), "" when absent.
    pub fn raw(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn checked(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        Posted::read(session, Request::from_parts(parts, body), state).await
    }
}

impl Posted {
    /// The form of `req` from the signed-in `session`, its CSRF token checked.
    pub(super) async fn read(
        session: Session,
        req: Request,
        state: &AppState,
    ) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| Problem::bad("The form could not be read.").into_response())?;
        let form = Form(form_pairs(&String::from_utf8_lossy(&bytes)));
        session
            .check_csrf(&headers, form.get("_csrf"))
            .map_err(IntoResponse::into_response)?;
        Ok(Posted { session, form })
    }
}

/// The request's session, if it has one, for pages that anyone may open.
pub(super) async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
) -> agentbase_core::Result<Option<DashboardSession>> {
    let token = cookie(headers, SESSION_COOKIE).unwrap_or_default();
    state.app.sessions().dashboard_session(&token).await
}

pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match session_of(&state, &headers).await {
        Ok(Some(_)) => redirect("/dashboard/workspaces"),
        Ok(None) => redirect("/dashboard/login"),
        Err(e) => Problem::from(e).into_response(),
    }
}

/// Only same-site dashboard paths are followed after signing in.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/dashboard") && !n.starts_with("//") => n,
        _ => "/dashboard/workspaces",
    }
}

/// What the sign-in template shows: the form's own CSRF token, and where to go
/// after signing in.
#[derive(serde::Serialize)]
struct SignInContext<'a> {
    form_csrf: &'a str,
    next: &'a str,
}

fn login_form(state: &AppState, headers: &HeaderMap, next: &str, error: Option<&str>) -> Response {
    // A login CSRF token: a double-submit cookie scoped to this form.
    let token = ids::alphanumeric(32);
    let notice = Notice {
        ok: None,
        error: error.map(str::to_owned),
    };
    let shell = Shell {
        title: "Sign in",
        csrf: None,
        notice: &notice,
        nav: None,
    };
    let page = SignInContext {
        form_csrf: &token,
        next,
    };
    // A failed attempt is the form again with a message: 200, like the first
    // view (a 401 would put an error in the browser console for a typo).
    let mut r = match templates::render("sign_in.html", &shell, page) {
        Ok(html) => html_response(StatusCode::OK, html),
        Err(p) => return p.into_response(),
    };
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_COOKIE,
            &token,
            "/dashboard/login",
            3600,
            secure(state, headers),
        ),
    );
    r
}

pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: QueryMap,
) -> Response {
    login_form(&state, &headers, safe_next(q.get("next")), None)
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form(form_pairs(&String::from_utf8_lossy(&body)));
    let next = safe_next(form.get("next")).to_owned();
    if !double_submit_ok(&headers, &form, LOGIN_COOKIE) {
        let expired = Some("The sign-in form expired. Try again.");
        return login_form(&state, &headers, &next, expired);
    }
    let trusted = &state.app.settings().server.trusted_proxies;
    let ip = client_ip(Some(peer.ip()), &headers, trusted);
    let (email, password) = (form.get("email"), form.raw("password"));
    match state
        .app
        .members()
        .dashboard_sign_in(&ip, email, password)
        .await
    {
        Ok(attempt) => attempted(&state, &headers, &next, email.is_some(), attempt),
        Err(e) => Problem::from(e).into_response(),
    }
}

/// A form posted from the dashboard's own pages: not cross-site, and its CSRF field
/// equal to the double-submit cookie `cookie_name` set with the form.
pub(super) fn double_submit_ok(headers: &HeaderMap, form: &Form, cookie_name: &str) -> bool {
    let same = match (cookie(headers, cookie_name), form.get("_csrf")) {
        (Some(c), Some(f)) => same_secret(&c, f),
        _ => false,
    };
    same && !cross_site(headers)
}

/// The answer to a sign-in attempt: signed in, the form again saying what a wrong
/// password is told (`member`: an email was given), or past the client's
/// per-minute allowance the form again with a 429 and `Retry-After`; without a
/// limiter, a 503.
fn attempted(
    state: &AppState,
    headers: &HeaderMap,
    next: &str,
    member: bool,
    attempt: SignInAttempt,
) -> Response {
    match attempt {
        SignInAttempt::SignedIn(signed_in) => {
            let path = "/dashboard/login";
            signed_in_response(state, headers, &signed_in, next, LOGIN_COOKIE, path)
        }
        SignInAttempt::Wrong => {
            let wrong = if member {
                "That email and password do not match."
            } else {
                "That password is not right."
            };
            login_form(state, headers, next, Some(wrong))
        }
        SignInAttempt::Limited(d) => {
            let wait = Some("Too many sign-in attempts. Wait a minute and try again.");
            let mut r = login_form(state, headers, next, wait);
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(d.retry_after_secs(state.app.now())),
            );
            r
        }
        SignInAttempt::Unavailable(e) => {
            tracing::error!(error = %e, "rate limiter unavailable");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable, please try again later.",
            )
            .into_response()
        }
    }
}

/// A 303 to `next` that sets the session cookie and clears the one-form CSRF
/// cookie (`form_cookie` on `form_path`) the sign-in came with.
pub(super) fn signed_in_response(
    state: &AppState,
    headers: &HeaderMap,
    signed_in: &SignedIn,
    next: &str,
    form_cookie: &str,
    form_path: &str,
) -> Response {
    let mut r = redirect(next);
    let max_age = (signed_in.expires_at - state.app.now()) / 1000;
    let secure = secure(state, headers);
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &signed_in.token,
            "/dashboard",
            max_age,
            secure,
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(form_cookie, "", form_path, 0, secure),
    );
    r
}

pub async fn logout(State(state): State<AppState>, posted: Posted) -> Response {
    if let Err(e) = state.app.sessions().sign_out(&posted.session.token).await {
        return Problem::from(e).into_response();
    }
    let mut r = redirect("/dashboard/login");
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", "/dashboard", 0, false),
    );
    r
}
