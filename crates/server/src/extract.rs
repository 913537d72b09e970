//! Extractors whose rejections speak the error envelope: malformed JSON is
//! `VALIDATION_INVALID_JSON`, a body of the wrong shape is `VALIDATION_INVALID_BODY`
//! with the offending field, an oversized body is 413. The query extractors of list
//! endpoints report every bad parameter at once; the ownership extractors
//! (`OwnAgent`, `OwnConversation`, `OwnWebhook`, `TicketRef`) answer 404 for
//! another workspace's resource before the body is read.

use std::collections::{BTreeMap, HashMap};

use agentbase_api_types::codes;
use agentbase_core::Millis;
use agentbase_core::conversation::Conversation;
use agentbase_core::time_fmt::parse_date_bound;
use agentbase_service::Principal;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// The request body as it came, read within the body limit; a body too large or
/// cut short is an error in the envelope.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::body_too_large()
            } else {
                ApiError::body_unreadable()
            }
        })?;
        Ok(RawBody(bytes))
    }
}

/// A JSON body. The content type is not insisted on: Chatbase clients always send
/// JSON, and a forgotten `-H` in a curl walk-through should not be an error.
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json_object(&bytes).map(AppJson)
    }
}

/// JSON nested deeper than this is refused before it is parsed (serde_json would
/// stop at 128 with a less helpful message; no API body nests past a handful).
pub const MAX_JSON_DEPTH: usize = 64;

/// The deepest nesting of arrays and objects in `bytes`, counted without parsing
/// (strings skipped), stopping once past `limit`.
fn json_depth(bytes: &[u8], limit: usize) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    break;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// [`parse_json`] for bodies that must be objects (every JSON body of the API):
/// serde would otherwise read a struct from an array (`[null, null]`).
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let starts_object = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_none_or(|b| *b == b'{');
    if !starts_object && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return Err(ApiError::invalid_field(
            "body",
            "The request body must be a JSON object",
        ));
    }
    parse_json(bytes)
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed = |e: &serde_json::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::VALIDATION_INVALID_JSON,
            format!("Malformed JSON: {e}"),
        )
    };
    if json_depth(bytes, MAX_JSON_DEPTH) > MAX_JSON_DEPTH {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::VALIDATION_INVALID_JSON,
            format!("Malformed JSON: arrays and objects nested more than {MAX_JSON_DEPTH} deep"),
        ));
    }
    // Syntax first, so a truncated body is "malformed" rather than "wrong shape".
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| malformed(&e))?;
    serde_path_to_error::deserialize(crate::strict::Strict(value)).map_err(|e| {
        let path = e.path().to_string();
        let message = clean_serde_message(&e.into_inner().to_string());
        // serde reports a missing field at its parent; name the field itself.
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name);
        let field = match (path.as_str(), missing) {
            (".", Some(name)) => name.to_owned(),
            (parent, Some(name)) => format!("{parent}.{name}"),
            (".", None) => "body".to_owned(),
            (p, None) => p.to_owned(),
        };
        ApiError::invalid_field(&field, message)
    })
}

/// serde appends " at line 1 column 9"; the field path already says where.
fn clean_serde_message(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// The query string as decoded pairs; list handlers read what they need from it
/// so every bad parameter is reported in the envelope, named.
#[derive(Debug, Clone, Default)]
pub struct QueryMap(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(QueryMap(form_pairs(parts.uri.query().unwrap_or(""))))
    }
}

impl QueryMap {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// The `cursor` and `limit` query parameters of every list endpoint.
#[derive(Debug, Clone)]
pub struct PageQuery {
    pub cursor: Option<agentbase_core::Cursor>,
    pub limit: u32,
}

impl PageQuery {
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 100;

    /// Reads `cursor` and `limit` (1..=`max`), adding problems to `details`.
    pub fn read(q: &QueryMap, max: u32, details: &mut BTreeMap<String, String>) -> PageQuery {
        let mut page = PageQuery {
            cursor: None,
            limit: Self::DEFAULT_LIMIT.min(max),
        };
        if let Some(c) = q.get("cursor") {
            match agentbase_core::Cursor::decode(c) {
                Some(c) => page.cursor = Some(c),
                None => {
                    details.insert(
                        "cursor".into(),
                        "is not a cursor issued by this server".into(),
                    );
                }
            }
        }
        if let Some(l) = q.get("limit") {
            match l.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => page.limit = n,
                _ => {
                    details.insert(
                        "limit".into(),
                        format!("must be an integer from 1 to {max}"),
                    );
                }
            }
        }
        page
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        let mut details = BTreeMap::new();
        let page = PageQuery::read(&q, Self::MAX_LIMIT, &mut details);
        if details.is_empty() {
            Ok(page)
        } else {
            Err(ApiError::invalid_body(details))
        }
    }
}

/// The page and creation window of a v2 list: `cursor`, `limit` (1..=`MAX`),
/// `startDate` and `endDate` (a date counts from its first or to its last moment;
/// an ISO 8601 date-time is taken as it is). As an extractor it rejects with every
/// bad parameter at once, and with `VALIDATION_INVALID_DATE_RANGE` for a window
/// that ends before it starts. An endpoint with parameters of its own calls
/// [`ListQuery::read`], adds its problems to the same `details`, then
/// [`ListQuery::check`].
#[derive(Debug, Clone)]
pub struct ListQuery<const MAX: u32 = { PageQuery::MAX_LIMIT }> {
    pub page: PageQuery,
    pub created_from: Option<Millis>,
    pub created_to: Option<Millis>,
}

impl<const MAX: u32> ListQuery<MAX> {
    /// Reads the page and the window, adding problems to `details`.
    pub fn read(q: &QueryMap, details: &mut BTreeMap<String, String>) -> Self {
        let page = PageQuery::read(q, MAX, details);
        let (created_from, created_to) = dates(q, ("startDate", "endDate"), details);
        Self {
            page,
            created_from,
            created_to,
        }
    }

    /// The problems found (the list's and the endpoint's own) as one error, then
    /// the window's order.
    pub fn check(self, details: BTreeMap<String, String>) -> Result<Self, ApiError> {
        window_order(
            details,
            (self.created_from, self.created_to),
            "startDate",
            "endDate",
        )?;
        Ok(self)
    }
}

impl<S: Send + Sync, const MAX: u32> FromRequestParts<S> for ListQuery<MAX> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        let mut details = BTreeMap::new();
        Self::read(&q, &mut details).check(details)
    }
}

/// A window's two bounds from the query: the first key is a start (a date counts
/// from its first moment), the second an end (a date counts to its last); either
/// may be an ISO 8601 date-time.
pub fn dates(
    q: &QueryMap,
    keys: (&str, &str),
    details: &mut BTreeMap<String, String>,
) -> (Option<Millis>, Option<Millis>) {
    bounds(
        q,
        keys,
        "must be YYYY-MM-DD or an ISO 8601 date-time",
        details,
    )
}

/// The two bounds named by `keys`, each read with `parse_date_bound`; one that does
/// not parse is added to `details` with `problem`.
fn bounds(
    q: &QueryMap,
    (from, to): (&str, &str),
    problem: &str,
    details: &mut BTreeMap<String, String>,
) -> (Option<Millis>, Option<Millis>) {
    let mut read = |key: &str, end: bool| {
        let text = q.get(key)?;
        let parsed = parse_date_bound(text, end);
        if parsed.is_none() {
            details.insert(key.to_owned(), problem.to_owned());
        }
        parsed
    };
    (read(from, false), read(to, true))
}

/// `details` as one error when there are any; then a window (named by its keys)
/// that ends before it starts.
pub fn window_order(
    details: BTreeMap<String, String>,
    (from, to): (Option<Millis>, Option<Millis>),
    from_key: &str,
    to_key: &str,
) -> Result<(), ApiError> {
    if !details.is_empty() {
        return Err(ApiError::invalid_body(details));
    }
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::VALIDATION_INVALID_DATE_RANGE,
            format!("{from_key} must not be after {to_key}"),
        ));
    }
    Ok(())
}

/// `startDate`/`endDate` (`YYYY-MM-DD` only: the v1 API and the leads export) as
/// the first and last millisecond of the window (both days included); a bad one is
/// added to `details`.
pub fn date_window(
    q: &QueryMap,
    details: &mut BTreeMap<String, String>,
) -> (Option<Millis>, Option<Millis>) {
    bounds(q, ("startDate", "endDate"), "must be YYYY-MM-DD", details)
}

/// `startDate`/`endDate` as `YYYY-MM-DD` (see [`date_window`]); as an extractor
/// it rejects with every bad one at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct DateWindow {
    pub from: Option<Millis>,
    pub to: Option<Millis>,
}

impl<S: Send + Sync> FromRequestParts<S> for DateWindow {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        let mut details = BTreeMap::new();
        let (from, to) = date_window(&q, &mut details);
        if !details.is_empty() {
            return Err(ApiError::invalid_body(details));
        }
        Ok(DateWindow { from, to })
    }
}

/// The caller, as the authentication layer left it.
fn principal(parts: &Parts) -> Result<Principal, ApiError> {
    (parts.extensions.get::<Principal>().cloned()).ok_or_else(ApiError::internal)
}

/// The path's parameters named `names`, in that order (axum's own rejection when
/// the path cannot be read).
async fn path_params<const N: usize>(
    parts: &mut Parts,
    state: &AppState,
    names: [&str; N],
) -> Result<[String; N], Response> {
    let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(names.map(|n| params.remove(n).unwrap_or_default()))
}

fn refused(e: agentbase_core::Error) -> Response {
    ApiError::from(e).into_response()
}

/// The path's `agentId`, an agent of the caller's workspace. The check runs before
/// the body is read, so another workspace's agent is missing whatever the body says.
#[derive(Debug, Clone)]
pub struct OwnAgent(pub String);

impl FromRequestParts<AppState> for OwnAgent {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let p = principal(parts).map_err(IntoResponse::into_response)?;
        let [agent_id] = path_params(parts, state, ["agentId"]).await?;
        (state.app.agents().get(&p.workspace_id, &agent_id).await).map_err(refused)?;
        Ok(OwnAgent(agent_id))
    }
}

/// The path's `conversationId`, a conversation of the path's agent in the caller's
/// workspace (checked before the body is read).
pub struct OwnConversation(pub Conversation);

impl FromRequestParts<AppState> for OwnConversation {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let p = principal(parts).map_err(IntoResponse::into_response)?;
        let [agent_id, id] = path_params(parts, state, ["agentId", "conversationId"]).await?;
        let found = state
            .app
            .conversations()
            .conversation_of(&p, &agent_id, &id);
        Ok(OwnConversation(found.await.map_err(refused)?))
    }
}

/// The path's `webhookId`, a webhook of the path's agent in the caller's workspace
/// (checked before the body is read).
pub struct OwnWebhook {
    pub agent_id: String,
    pub id: String,
}

impl FromRequestParts<AppState> for OwnWebhook {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let p = principal(parts).map_err(IntoResponse::into_response)?;
        let [agent_id, id] = path_params(parts, state, ["agentId", "webhookId"]).await?;
        let found = state.app.webhooks().get(&p.workspace_id, &agent_id, &id);
        found.await.map_err(refused)?;
        Ok(OwnWebhook { agent_id, id })
    }
}

/// The path's agent (checked first, so another workspace's agent is "not found"
/// whatever the number) and `ticketNumber`, an integer from 1 to 2^31 − 1.
pub struct TicketRef {
    pub agent_id: String,
    pub number: i64,
}

impl FromRequestParts<AppState> for TicketRef {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let OwnAgent(agent_id) = OwnAgent::from_request_parts(parts, state).await?;
        let [raw] = path_params(parts, state, ["ticketNumber"]).await?;
        match raw.parse::<i64>() {
            Ok(number) if (1..=2_147_483_647).contains(&number) => {
                Ok(TicketRef { agent_id, number })
            }
            _ => Err(ApiError::invalid_field(
                "ticketNumber",
                "must be an integer from 1 to 2147483647",
            )
            .into_response()),
        }
    }
}

/// `application/x-www-form-urlencoded` pairs, percent-decoded.
pub(crate) fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings() {
        assert_eq!(json_depth(br#"{"a":[1,{"b":"[[[["}]}"#, 64), 3);
        assert_eq!(json_depth(br#""\"[[[""#, 64), 0);
        let deep = "[".repeat(100_000);
        assert_eq!(json_depth(deep.as_bytes(), 64), 65);
        let e = parse_json::<serde_json::Value>(deep.as_bytes()).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn percent_decoding_handles_base64_cursors() {
        assert_eq!(percent_decode("eyJ0Ijo%3D%3D"), "eyJ0Ijo==");
        assert_eq!(percent_decode("a+b%2"), "a b%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
