//! `Allow` on every 405 and an answer to `OPTIONS` on every route: the router
//! knows each route's methods and puts them in a 405's `Allow` header; an
//! `OPTIONS` request to a route without its own handler becomes 204 with that
//! header (plus `OPTIONS`), as RFC 9110 describes.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The methods in `allow` plus `OPTIONS`, which every route answers.
fn with_options(allow: &str) -> String {
    let mut methods: Vec<&str> = allow
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    if !methods.iter().any(|m| m.eq_ignore_ascii_case("OPTIONS")) {
        methods.push("OPTIONS");
    }
    methods.join(", ")
}

pub async fn allow(req: Request, next: Next) -> Response {
    let options = req.method() == Method::OPTIONS;
    let mut response = next.run(req).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let allow = response
        .headers()
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .map(with_options);
    let Some(allow) = allow.and_then(|a| HeaderValue::from_str(&a).ok()) else {
        return response;
    };
    if options {
        return (StatusCode::NO_CONTENT, [(header::ALLOW, allow)]).into_response();
    }
    response.headers_mut().insert(header::ALLOW, allow);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_joins_the_allowed_methods_once() {
        assert_eq!(with_options("GET,HEAD,PUT"), "GET, HEAD, PUT, OPTIONS");
        assert_eq!(with_options("POST, OPTIONS"), "POST, OPTIONS");
    }
}
