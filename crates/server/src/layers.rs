//! Middleware: the request id, span and metrics around every request (matched or
//! not), and authentication + rate limiting + plan check around the API.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use agentbase_api_types::codes;
use agentbase_service::Principal;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::AppState;
use crate::error::ApiError;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, for handlers and logs.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn acceptable_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    ok.then(|| s.to_owned())
}

pub async fn request_context(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(acceptable_id)
        .unwrap_or_else(|| format!("req_{}", agentbase_core::ids::alphanumeric(20)));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    let elapsed = started.elapsed();
    state
        .metrics
        .record(&route, method, status.as_u16(), elapsed);
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1e3,
            "served"
        );
    });
    response
}

/// The request's method as metrics and logs name it: the standard ones by name,
/// every other token (HTTP allows any, tens of kilobytes long, and no key is needed
/// to send one) as `other`, so that nobody can add metric series or log bulk at will.
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    STANDARD
        .into_iter()
        .find(|m| *m == method.as_str())
        .unwrap_or("other")
}

/// The client's address: the socket peer, or — only when the peer is a trusted
/// proxy — the right-most untrusted address of `X-Forwarded-For`.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> String {
    let Some(peer) = peer else {
        return "unknown".to_owned();
    };
    if !trusted.contains(&peer) {
        return peer.to_string();
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .or(forwarded.first())
        .unwrap_or(&peer)
        .to_string()
}

/// The largest request head (URL plus headers) taken, in bytes. Browsers' own
/// limits are about this size; hyper refuses anything past its buffer before this
/// layer runs.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// Per-request limits: the head's size, then a deadline on the answer (for a
/// stream, on its start). Uploads get their own, longer deadline.
pub async fn limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let head = req.uri().to_string().len()
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if head > MAX_HEAD_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            codes::VALIDATION_HEADERS_TOO_LARGE,
            format!("The request's URL and headers are larger than {MAX_HEAD_BYTES} bytes"),
        )
        .into_response();
    }
    let server = &state.app.settings().server;
    let multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        });
    let secs = if multipart {
        server.upload_timeout_secs
    } else {
        server.request_timeout_secs
    };
    match tokio::time::timeout(std::time::Duration::from_secs(secs), next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::REQUEST_TIMEOUT,
            format!("The request was not answered within {secs} s"),
        )
        .into_response(),
    }
}

/// Refuses a path that is not UTF-8 once decoded (`/agents/%FF`) in the envelope,
/// before the route's path parameters refuse it in plain text of their own. A
/// route layer, inside each API's error reshaping (v1, Apify).
pub async fn utf8_path(req: Request, next: Next) -> Response {
    if decodes_to_utf8(req.uri().path()) {
        return next.run(req).await;
    }
    ApiError::new(
        StatusCode::BAD_REQUEST,
        codes::VALIDATION_INVALID_PATH,
        "The URL's path is not valid UTF-8 once percent-decoded",
    )
    .into_response()
}

/// Whether `path` is UTF-8 once its `%XX` escapes are decoded (a `%` not followed by
/// two hex digits stays as it is, as the router reads it).
fn decodes_to_utf8(path: &str) -> bool {
    let bytes = path.as_bytes();
    if !bytes.contains(&b'%') {
        return true;
    }
    let hex = |b: u8| (b as char).to_digit(16);
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| Some(hex(*bytes.get(i + 1)?)? * 16 + hex(*bytes.get(i + 2)?)?))
            .flatten();
        match escaped {
            Some(b) => {
                decoded.push(b as u8);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

/// Marks a response as content, never a page: the API serves what tenants and
/// crawled sites wrote (key-value records with the content type their writer chose,
/// exports, logs) from the dashboard's origin, and a browser opening one must not run
/// it there. Its document is sandboxed with nothing allowed, and its type is not
/// sniffed. A handler's own policy is kept.
pub async fn inert_content(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'; sandbox",
        ));
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    response
}

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Apify clients pass the key as `?token=`: it becomes the Bearer header (an
/// explicit header wins) before [`authenticate`] runs.
pub async fn apify_token(mut req: Request, next: Next) -> Response {
    if !req
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION)
        && let Some(token) = crate::extract::form_pairs(req.uri().query().unwrap_or(""))
            .into_iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v)
        && let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}"))
    {
        req.headers_mut()
            .insert(axum::http::header::AUTHORIZATION, v);
    }
    next.run(req).await
}

/// Authenticates, rate limits, then checks the plan. Every response past
/// authentication carries the rate-limit headers, errors included.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal: Principal = match state.app.accounts().authenticate(header).await {
        Ok(p) => p,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = client_ip(
        peer,
        req.headers(),
        &state.app.settings().server.trusted_proxies,
    );
    let decision = match state
        .app
        .accounts()
        .rate_limit(&principal.key_id, &ip)
        .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "rate limiter unavailable");
            return ApiError::unavailable().into_response();
        }
    };
    let mut response = if !decision.allowed {
        let retry_after = decision.retry_after_secs(state.app.now());
        let mut r = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            codes::RATE_LIMIT_TOO_MANY_REQUESTS,
            "Too many requests, please try again later",
        )
        .into_response();
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from(retry_after),
        );
        r
    } else if !principal.plan.allows_api() {
        ApiError::new(
            StatusCode::FORBIDDEN,
            codes::SUBSCRIPTION_API_RESTRICTED_PLAN,
            "A Standard plan or higher is required to access the API",
        )
        .into_response()
    } else {
        req.extensions_mut().insert(principal);
        next.run(req).await
    };
    let h = response.headers_mut();
    h.insert(LIMIT, HeaderValue::from(decision.limit));
    h.insert(REMAINING, HeaderValue::from(decision.remaining));
    h.insert(RESET, HeaderValue::from(decision.reset_ms));
    response
}

/// v1 clients read `{"message"}` on errors: the v2 envelope is reshaped for them.
pub async fn v1_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return ApiError::internal().into_response();
    };
    let reshaped = serde_json::from_slice::<agentbase_api_types::ErrorResponse>(&bytes)
        .ok()
        .map(|e| agentbase_api_types::v1::V1Error {
            message: e.error.message,
            code: e.error.code,
            issues: e.error.details.map(|d| {
                d.into_iter()
                    .map(|(field, message)| agentbase_api_types::v1::V1Issue { field, message })
                    .collect()
            }),
        })
        .and_then(|e| serde_json::to_vec(&e).ok());
    let body = match reshaped {
        Some(b) => {
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            axum::body::Body::from(b)
        }
        None => axum::body::Body::from(bytes),
    };
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_decodes_to_utf8_or_not() {
        for ok in [
            "/api/v2/agents/abc",
            "/a/%41b",
            "/caf%C3%A9",
            "/100%",
            "/%zz/%4",
            "/%",
        ] {
            assert!(decodes_to_utf8(ok), "{ok}");
        }
        for bad in ["/api/v2/agents/%FF", "/caf%C3", "/%c3%28", "/x/%ED%A0%80"] {
            assert!(!decodes_to_utf8(bad), "{bad}");
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 1.2.3.4, 10.0.0.2"),
        );
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        assert_eq!(client_ip(Some(ip("9.9.9.9")), &h, &trusted), "9.9.9.9");
        assert_eq!(client_ip(Some(ip("10.0.0.1")), &h, &trusted), "1.2.3.4");
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &HeaderMap::new(), &trusted),
            "10.0.0.1"
        );
    }
}
