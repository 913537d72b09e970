//! Apify's ad-hoc webhooks of a crawl run: the `webhooks` parameter of a run's start
//! (base64 of a JSON array), which run events each wants, where it posts, and the
//! body and headers its templates make. No IO: the outbox is in `store`, the
//! delivery in `service`.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::FieldErrors;
use crate::crawl_run::RunStatus;

pub const CREATED: &str = "ACTOR.RUN.CREATED";
/// The events a run webhook may ask for, as Apify names them. A run here is never
/// resurrected, so `ACTOR.RUN.RESURRECTED` is accepted and never happens.
pub const EVENTS: [&str; 6] = [
    CREATED,
    "ACTOR.RUN.SUCCEEDED",
    "ACTOR.RUN.FAILED",
    "ACTOR.RUN.TIMED_OUT",
    "ACTOR.RUN.ABORTED",
    "ACTOR.RUN.RESURRECTED",
];
/// Webhooks one run may have.
pub const MAX_PER_RUN: usize = 10;
/// Characters of one template, and of the whole parameter once decoded (the
/// server's limit on a request's head keeps the parameter within 32 KiB anyway).
pub const MAX_TEMPLATE_LEN: usize = 16 * 1024;
pub const MAX_PARAM_LEN: usize = 32 * 1024;
pub const MAX_URL_LEN: usize = 2048;
/// Bytes of one payload once its template is filled: a template may repeat
/// `{{resource}}`, and a delivery past this is not sent.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Bytes of one delivery's headers (names and values) once its template is filled:
/// a headers template may repeat `{{resource}}` too.
pub const MAX_HEADERS_BYTES: usize = 16 * 1024;
/// Apify's default payload template.
pub const DEFAULT_PAYLOAD: &str = "{\"userId\": {{userId}}, \"createdAt\": {{createdAt}}, \
    \"eventType\": {{eventType}}, \"eventData\": {{eventData}}, \"resource\": {{resource}}}";
/// Headers a template may not set: the connection's own, and the body's type.
const RESERVED_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
];

/// The event a run's end in `status` makes (none while it goes on).
pub fn end_event(status: RunStatus) -> Option<&'static str> {
    Some(match status {
        RunStatus::Succeeded => "ACTOR.RUN.SUCCEEDED",
        RunStatus::Failed => "ACTOR.RUN.FAILED",
        RunStatus::TimedOut => "ACTOR.RUN.TIMED_OUT",
        RunStatus::Aborted => "ACTOR.RUN.ABORTED",
        _ => return None,
    })
}

/// One ad-hoc webhook, as Apify's clients send it (fields they may send and this
/// server does not use, such as `ignoreSslErrors`, are left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunWebhook {
    pub event_types: Vec<String>,
    pub request_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub do_not_retry: bool,
    #[serde(default)]
    pub should_interpolate_strings: bool,
}

impl RunWebhook {
    pub fn wants(&self, event: &str) -> bool {
        self.event_types.iter().any(|e| e == event)
    }

    /// The body sent for an event with `vars` (see [`vars`]).
    pub fn body(&self, vars: &Value) -> String {
        let template = self.payload_template.as_deref().unwrap_or(DEFAULT_PAYLOAD);
        render(template, vars, self.should_interpolate_strings)
    }

    /// The body and headers sent for an event with `vars`, or why nothing is sent:
    /// filled templates past [`MAX_BODY_BYTES`] or [`MAX_HEADERS_BYTES`] (a
    /// template may repeat its variables).
    pub fn request(&self, vars: &Value) -> Result<(String, Vec<(String, String)>), String> {
        let body = self.body(vars);
        if body.len() > MAX_BODY_BYTES {
            return Err(format!(
                "the payload would be {} bytes, more than {MAX_BODY_BYTES} bytes",
                body.len()
            ));
        }
        let headers = self.headers(vars);
        let size: usize = headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_HEADERS_BYTES {
            return Err(format!(
                "the headers would be {size} bytes, more than {MAX_HEADERS_BYTES} bytes"
            ));
        }
        Ok((body, headers))
    }

    /// The headers its template adds for an event with `vars` (none without one).
    pub fn headers(&self, vars: &Value) -> Vec<(String, String)> {
        let Some(template) = &self.headers_template else {
            return Vec::new();
        };
        let rendered = render(template, vars, self.should_interpolate_strings);
        serde_json::from_str::<Map<String, Value>>(&rendered)
            .map(|m| {
                m.into_iter()
                    .filter_map(|(k, v)| Some((k, header_value(&v)?)))
                    .filter(|(k, v)| header_problem(k, v).is_none())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Most persistent webhooks (`POST /v2/webhooks`) one workspace may have.
pub const MAX_PER_WORKSPACE: i64 = 20;
/// Characters of a persistent webhook's description.
pub const MAX_DESCRIPTION_LEN: usize = 1_000;

/// A persistent webhook, as `POST /v2/webhooks` takes it: a run webhook with
/// Apify's condition (every run of an actor, or one run) and what it is shown with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDefinition {
    #[serde(flatten)]
    pub hook: RunWebhook,
    pub condition: Condition,
    /// With `condition.actorRunId`: told only once (a run ends once anyway).
    #[serde(default)]
    pub is_ad_hoc: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Accepted and shown; TLS is always checked.
    #[serde(default)]
    pub ignore_ssl_errors: bool,
}

/// Which runs a persistent webhook hears of: an actor's (the crawler's) or one
/// run's. Apify's third kind, an actor task's, is not served (no tasks here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_run_id: Option<String>,
}

/// A stored persistent webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApifyWebhook {
    pub id: String,
    pub workspace_id: String,
    pub definition: WebhookDefinition,
    pub created_at: crate::Millis,
    pub modified_at: crate::Millis,
}

/// A delivery of a run event to a webhook (ad-hoc or persistent), as Apify shows a
/// webhook dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    pub id: String,
    pub workspace_id: String,
    /// The persistent webhook; `None` for a run's ad-hoc one.
    pub webhook_id: Option<String>,
    pub run_id: String,
    pub event_type: String,
    pub state: crate::webhook::DeliveryState,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: crate::Millis,
    pub finished_at: Option<crate::Millis>,
}

/// A persistent webhook's definition from a JSON object (a create's body, or an
/// update's merged over the stored one): the fields of a run webhook, checked as
/// the `webhooks` parameter's are, and `condition`, `isAdHoc`, `description`,
/// `ignoreSslErrors`. Every problem, by field. Whether the condition's actor or
/// run exists is the caller's to check.
pub fn parse_definition(v: &Value) -> Result<WebhookDefinition, FieldErrors> {
    let mut errors = FieldErrors::new();
    let hook = webhook("", v, &mut errors);
    let Value::Object(m) = v else {
        return Err(errors);
    };
    let text = |c: &Map<String, Value>, key: &str| match c.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => Ok(Some(s.clone())),
        Some(_) => Err(format!("condition.{key}")),
    };
    let condition = match m.get("condition") {
        Some(Value::Object(c)) => {
            match (
                text(c, "actorId"),
                text(c, "actorRunId"),
                text(c, "actorTaskId"),
            ) {
                (_, _, Ok(Some(_)) | Err(_)) => {
                    let m = "actor tasks are not served: use condition.actorId";
                    errors.insert("condition.actorTaskId".into(), m.into());
                    None
                }
                (Ok(actor_id), Ok(actor_run_id), Ok(None))
                    if actor_id.is_some() != actor_run_id.is_some() =>
                {
                    Some(Condition {
                        actor_id,
                        actor_run_id,
                    })
                }
                (a, r, _) => {
                    for field in [a.err(), r.err()].into_iter().flatten() {
                        errors.insert(field, "must be an id (a string)".into());
                    }
                    let m = "must name one of actorId or actorRunId";
                    errors.entry("condition".into()).or_insert_with(|| m.into());
                    None
                }
            }
        }
        _ => {
            let m = "must be an object naming actorId or actorRunId";
            errors.insert("condition".into(), m.into());
            None
        }
    };
    let mut flag = |field: &str| match m.get(field) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.insert(field.into(), "must be true or false".into());
            false
        }
    };
    let (is_ad_hoc, ignore_ssl_errors) = (flag("isAdHoc"), flag("ignoreSslErrors"));
    let description = match m.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) if d.chars().count() <= MAX_DESCRIPTION_LEN => Some(d.clone()),
        Some(_) => {
            let m = format!("must be text of at most {MAX_DESCRIPTION_LEN} characters");
            errors.insert("description".into(), m);
            None
        }
    };
    match (hook, condition) {
        (Some(hook), Some(condition)) if errors.is_empty() => Ok(WebhookDefinition {
            hook,
            condition,
            is_ad_hoc,
            description,
            ignore_ssl_errors,
        }),
        _ => Err(errors),
    }
}

/// The variables of an event's templates: `userId`, `createdAt`, `eventType`,
/// `eventData` (`actorId`, `actorRunId`), `resource` (the run as Apify's API shows
/// it) and `globals` (`dateISO`, `dateUnix`), as Apify names them.
pub fn vars(
    user_id: &str,
    event_type: &str,
    (actor_id, run_id): (&str, &str),
    resource: Value,
    now: crate::Millis,
) -> Value {
    let now_iso = crate::time_fmt::iso8601(now);
    serde_json::json!({
        "userId": user_id,
        "createdAt": now_iso,
        "eventType": event_type,
        "eventData": {"actorId": actor_id, "actorRunId": run_id},
        "resource": resource,
        "globals": {"dateISO": now_iso, "dateUnix": now / 1000},
    })
}

/// The `webhooks` parameter: base64 (standard or URL-safe, padded or not) of a JSON
/// array of webhook objects. Every problem, by field (`webhooks`,
/// `webhooks[1].requestUrl`, …).
pub fn parse_param(text: &str) -> Result<Vec<RunWebhook>, FieldErrors> {
    let fail = |m: &str| {
        let mut e = FieldErrors::new();
        e.insert("webhooks".into(), m.into());
        e
    };
    // A `+` sent unescaped in a query reads as a space.
    let text = text.trim().trim_end_matches('=').replace(' ', "+");
    let text = text.as_str();
    if text.len() > MAX_PARAM_LEN * 4 / 3 + 4 {
        return Err(fail("is longer than a run's webhooks may be"));
    }
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
        .map_err(|_| fail("must be base64 of a JSON array of webhooks"))?;
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(fail("must be base64 of a JSON array of webhooks"));
    };
    if items.len() > MAX_PER_RUN {
        return Err(fail(&format!("a run has at most {MAX_PER_RUN} webhooks")));
    }
    let mut errors = FieldErrors::new();
    let hooks: Vec<RunWebhook> = (items.iter().enumerate())
        .filter_map(|(i, v)| webhook(&format!("webhooks[{i}]"), v, &mut errors))
        .collect();
    if errors.is_empty() {
        Ok(hooks)
    } else {
        Err(errors)
    }
}

/// One webhook of the parameter; its problems go into `errors` under `at` (at the
/// top level when empty).
fn webhook(at: &str, v: &Value, errors: &mut FieldErrors) -> Option<RunWebhook> {
    let Value::Object(m) = v else {
        let key = if at.is_empty() { "body" } else { at };
        errors.insert(key.into(), "must be an object".into());
        return None;
    };
    let before = errors.len();
    let mut problem = |field: &str, message: String| {
        let key = if at.is_empty() {
            field.to_owned()
        } else {
            format!("{at}.{field}")
        };
        errors.insert(key, message);
    };
    let text = |field: &str| m.get(field).and_then(Value::as_str).map(str::to_owned);
    let mut event_types = Vec::new();
    match m.get("eventTypes") {
        Some(Value::Array(list)) if !list.is_empty() => {
            for e in list {
                match e.as_str() {
                    Some(e) if EVENTS.contains(&e) => {
                        if !event_types.iter().any(|x| x == e) {
                            event_types.push(e.to_owned());
                        }
                    }
                    _ => problem(
                        "eventTypes",
                        format!("each is one of {}", EVENTS.join(", ")),
                    ),
                }
            }
        }
        _ => problem("eventTypes", "must list at least one event".into()),
    }
    let request_url = text("requestUrl").unwrap_or_default();
    let lower = request_url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://"))
        || request_url.len() > MAX_URL_LEN
        || request_url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        problem(
            "requestUrl",
            format!(
                "must be an http(s) URL of at most {MAX_URL_LEN} characters, without spaces or \
                 control characters"
            ),
        );
    }
    for field in ["payloadTemplate", "headersTemplate", "idempotencyKey"] {
        match m.get(field) {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(_) => problem(field, "must be a string".into()),
        }
    }
    // A flag is a boolean: `"yes"` read as false would retry what was asked not
    // to be, so anything else is refused.
    let mut flag = |field: &str| match m.get(field) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problem(field, "must be true or false".into());
            false
        }
    };
    let do_not_retry = flag("doNotRetry");
    let interpolate = flag("shouldInterpolateStrings");
    let payload_template = text("payloadTemplate");
    let headers_template = text("headersTemplate");
    let templates = (payload_template.as_deref(), headers_template.as_deref());
    for (field, message) in template_problems(templates, interpolate) {
        problem(field, message);
    }
    let idempotency_key = text("idempotencyKey");
    if idempotency_key
        .as_ref()
        .is_some_and(|k| k.is_empty() || k.len() > 256 || k.chars().any(char::is_control))
    {
        problem(
            "idempotencyKey",
            "must be 1–256 characters, none a control character".into(),
        );
    }
    (errors.len() == before).then_some(RunWebhook {
        event_types,
        request_url,
        payload_template,
        headers_template,
        idempotency_key,
        do_not_retry,
        should_interpolate_strings: interpolate,
    })
}

/// What is wrong with a webhook's payload and headers templates, by field: each is
/// filled with sample values and must then be JSON (the headers an object of
/// headers that can be sent).
fn template_problems(
    (payload, headers): (Option<&str>, Option<&str>),
    interpolate: bool,
) -> Vec<(&'static str, String)> {
    let sample = vars(
        "user",
        CREATED,
        ("actor", "run"),
        Value::Object(Map::new()),
        0,
    );
    let too_long = format!("has at most {MAX_TEMPLATE_LEN} characters");
    let mut problems = Vec::new();
    if let Some(t) = payload {
        if t.len() > MAX_TEMPLATE_LEN {
            problems.push(("payloadTemplate", too_long.clone()));
        } else if serde_json::from_str::<Value>(&render(t, &sample, interpolate)).is_err() {
            let m = "must be JSON once its {{variables}} are filled";
            problems.push(("payloadTemplate", m.to_owned()));
        }
    }
    if let Some(t) = headers {
        let rendered = render(t, &sample, interpolate);
        let problem = match serde_json::from_str::<Map<String, Value>>(&rendered) {
            _ if t.len() > MAX_TEMPLATE_LEN => Some(too_long),
            Ok(headers) => (headers.iter())
                .find_map(|(k, v)| header_problem(k, &header_value(v).unwrap_or_default())),
            Err(_) => Some("must be a JSON object once its {{variables}} are filled".to_owned()),
        };
        problems.extend(problem.map(|m| ("headersTemplate", m)));
    }
    problems
}

/// A header's value from a template: a string as it is, a number or the like as
/// its JSON; none for `null` (a variable the event does not have).
fn header_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Why a header from a template cannot be sent, if it cannot.
fn header_problem(name: &str, value: &str) -> Option<String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || name.len() > 256 || !name.chars().all(token) {
        return Some(format!("{name:?} is not a header name"));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("x-apify-") {
        return Some(format!("{name:?} is set by the server"));
    }
    if value.len() > 8 * 1024 || value.chars().any(|c| c.is_control() && c != '\t') {
        return Some(format!("the value of {name:?} cannot be sent"));
    }
    None
}

/// Fills `template`'s `{{name}}` and `{{name.path}}` placeholders from `vars` (a
/// JSON object; a name it lacks is `null`): outside JSON strings with the value's
/// JSON; inside them, with `interpolate_strings`, with its text (else left as
/// written), as Apify's `shouldInterpolateStrings` does.
pub fn render(template: &str, vars: &Value, interpolate_strings: bool) -> String {
    let mut out = String::with_capacity(template.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{")
            && (!in_string || interpolate_strings)
            && let Some(end) = rest[2..].find("}}")
        {
            let name = rest[2..2 + end].trim();
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                let value = name
                    .split('.')
                    .try_fold(vars, |v, key| match v {
                        Value::Object(m) => m.get(key),
                        Value::Array(a) => a.get(key.parse::<usize>().ok()?),
                        _ => None,
                    })
                    .unwrap_or(&Value::Null);
                if in_string {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let quoted = Value::String(text).to_string();
                    out.push_str(&quoted[1..quoted.len() - 1]);
                } else {
                    out.push_str(&value.to_string());
                }
                rest = &rest[2 + end + 2..];
                continue;
            }
        }
        match c {
            '\\' if in_string => escaped = !escaped,
            '"' if !escaped => in_string = !in_string,
            _ => escaped = false,
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(v: &Value) -> String {
        base64::engine::general_purpose::STANDARD.encode(v.to_string())
    }

    fn sample() -> Value {
        vars(
            "ws_1",
            "ACTOR.RUN.SUCCEEDED",
            ("actor", "run1"),
            json!({"id": "run1", "defaultDatasetId": "ds1", "stats": {"itemCount": 3}}),
            1_705_314_600_000,
        )
    }

    #[test]
    fn filled_templates_past_their_bounds_are_not_sent() {
        let vars = json!({"resource": "r".repeat(5_000), "eventType": "E"});
        let hook = |payload: Option<String>, headers: Option<String>| RunWebhook {
            event_types: vec!["E".into()],
            request_url: "https://example.com/".into(),
            payload_template: payload,
            headers_template: headers,
            idempotency_key: None,
            do_not_retry: false,
            should_interpolate_strings: false,
        };
        let five: Vec<String> = (0..5)
            .map(|i| format!("\"X-{i}\": {{{{resource}}}}"))
            .collect();
        let wide = hook(None, Some(format!("{{{}}}", five.join(", "))));
        assert!(
            wide.request(&vars)
                .unwrap_err()
                .contains("headers would be")
        );
        let two = hook(None, Some(format!("{{{}}}", five[..2].join(", "))));
        assert_eq!(two.request(&vars).unwrap().1.len(), 2);
        let long = hook(Some(format!("[{}null]", "{{resource}},".repeat(60))), None);
        assert!(
            long.request(&vars)
                .unwrap_err()
                .contains("payload would be")
        );
    }

    #[test]
    fn the_default_payload_is_apifys() {
        let hook = RunWebhook {
            event_types: vec!["ACTOR.RUN.SUCCEEDED".into()],
            request_url: "https://example.com/".into(),
            payload_template: None,
            headers_template: None,
            idempotency_key: None,
            do_not_retry: false,
            should_interpolate_strings: false,
        };
        let body: Value = serde_json::from_str(&hook.body(&sample())).unwrap();
        assert_eq!(body["userId"], "ws_1");
        assert_eq!(body["eventType"], "ACTOR.RUN.SUCCEEDED");
        assert_eq!(
            body["eventData"],
            json!({"actorId": "actor", "actorRunId": "run1"})
        );
        assert_eq!(body["resource"]["defaultDatasetId"], "ds1");
        assert_eq!(body["createdAt"], "2024-01-15T10:30:00.000Z");
    }

    #[test]
    fn placeholders_fill_with_json_outside_strings_and_text_inside_when_asked() {
        let t = r#"{"run": {{resource.id}}, "n": {{resource.stats.itemCount}}, "missing": {{nope.x}}, "s": "id {{resource.id}} \"{{eventType}}\""}"#;
        let plain: Value = serde_json::from_str(&render(t, &sample(), false)).unwrap();
        assert_eq!(plain["run"], "run1");
        assert_eq!(plain["n"], 3);
        assert_eq!(plain["missing"], Value::Null);
        assert_eq!(plain["s"], r#"id {{resource.id}} "{{eventType}}""#);
        let filled: Value = serde_json::from_str(&render(t, &sample(), true)).unwrap();
        assert_eq!(filled["s"], r#"id run1 "ACTOR.RUN.SUCCEEDED""#);
        // A value with quotes stays inside its string.
        let vars = json!({"x": "a\"b"});
        assert_eq!(render(r#"{"v": "{{x}}"}"#, &vars, true), r#"{"v": "a\"b"}"#);
        // Not a placeholder: left as written.
        assert_eq!(render("{{ a b }} {{", &vars, false), "{{ a b }} {{");
    }

    #[test]
    fn the_parameter_decodes_in_either_alphabet_and_checks_every_field() {
        let one = json!([{"eventTypes": ["ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.SUCCEEDED"],
            "requestUrl": "https://example.com/hook", "doNotRetry": true,
            "ignoreSslErrors": false, "headersTemplate": "{\"X-Run\": {{resource.id}}}"}]);
        let hooks = parse_param(&b64(&one)).unwrap();
        assert_eq!(hooks[0].event_types, ["ACTOR.RUN.SUCCEEDED"]);
        assert!(hooks[0].do_not_retry);
        assert_eq!(
            hooks[0].headers(&sample()),
            [("X-Run".to_owned(), "run1".to_owned())]
        );
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(one.to_string());
        assert_eq!(parse_param(&url_safe).unwrap(), hooks);
        assert!(parse_param(&b64(&json!([]))).unwrap().is_empty());

        let refused = |v: Value| parse_param(&b64(&v)).unwrap_err();
        let e = refused(json!([{"eventTypes": ["RUN.DONE"], "requestUrl": "ftp://x"}]));
        assert!(
            e.contains_key("webhooks[0].eventTypes") && e.contains_key("webhooks[0].requestUrl"),
            "{e:?}"
        );
        let e = refused(
            json!([{"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "https://x/a\r\nX-B: c", "idempotencyKey": "a\nb"}]),
        );
        assert!(
            e.contains_key("webhooks[0].requestUrl")
                && e.contains_key("webhooks[0].idempotencyKey"),
            "{e:?}"
        );
        let e = refused(json!([{"eventTypes": [], "requestUrl": "https://x/"}]));
        assert!(e.contains_key("webhooks[0].eventTypes"), "{e:?}");
        let e = refused(json!([["ACTOR.RUN.SUCCEEDED", "https://x/"]]));
        assert!(
            e.contains_key("webhooks[0]"),
            "an array is not a webhook: {e:?}"
        );
        let e = refused(
            json!([{"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "https://x/", "payloadTemplate": "{\"a\": {{resource}"}]),
        );
        assert!(e.contains_key("webhooks[0].payloadTemplate"), "{e:?}");
        let e = refused(
            json!([{"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "https://x/", "headersTemplate": "{\"Host\": \"evil\"}"}]),
        );
        assert!(e.contains_key("webhooks[0].headersTemplate"), "{e:?}");
        let e = refused(
            json!([{"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "https://x/", "headersTemplate": "{\"X-A\": \"a\\r\\nb\"}"}]),
        );
        assert!(e.contains_key("webhooks[0].headersTemplate"), "{e:?}");
        let e = refused(
            json!([{"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "https://x/", "headersTemplate": "{\"X-Apify-Webhook\": \"forged\"}",
                "idempotencyKey": "k".repeat(257)}]),
        );
        assert!(
            e.contains_key("webhooks[0].headersTemplate")
                && e.contains_key("webhooks[0].idempotencyKey"),
            "{e:?}"
        );
        // A flag that is not a boolean is refused, not read as false.
        let e = refused(
            json!([{"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "https://x/", "doNotRetry": "yes", "shouldInterpolateStrings": 1}]),
        );
        assert!(
            e.contains_key("webhooks[0].doNotRetry")
                && e.contains_key("webhooks[0].shouldInterpolateStrings"),
            "{e:?}"
        );
        let many: Vec<Value> = (0..11)
            .map(|_| json!({"eventTypes": [CREATED], "requestUrl": "https://x/"}))
            .collect();
        assert!(refused(Value::Array(many)).contains_key("webhooks"));
        assert!(
            parse_param("not base64!")
                .unwrap_err()
                .contains_key("webhooks")
        );
        assert!(
            parse_param(&b64(&json!({"a": 1})))
                .unwrap_err()
                .contains_key("webhooks")
        );
    }

    #[test]
    fn a_persistent_webhook_needs_one_condition_and_is_checked_as_a_run_webhook() {
        let ok = parse_definition(&json!({"eventTypes": ["ACTOR.RUN.SUCCEEDED"],
            "requestUrl": "https://example.com/", "condition": {"actorId": "apify~website-content-crawler"},
            "description": "d", "isAdHoc": false, "ignoreSslErrors": true, "idempotencyKey": "k"}))
        .unwrap();
        assert_eq!(
            ok.condition.actor_id.as_deref(),
            Some("apify~website-content-crawler")
        );
        assert_eq!(ok.hook.idempotency_key.as_deref(), Some("k"));
        assert!(ok.ignore_ssl_errors && !ok.is_ad_hoc);
        // Stored and read back as it was.
        let stored = serde_json::to_value(&ok).unwrap();
        assert_eq!(parse_definition(&stored).unwrap(), ok);

        let refused = |v: Value| parse_definition(&v).unwrap_err();
        let base = |condition: Value| json!({"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "https://x/", "condition": condition});
        assert!(
            refused(json!({"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "https://x/"}))
                .contains_key("condition")
        );
        assert!(refused(base(json!({}))).contains_key("condition"));
        assert!(
            refused(base(json!({"actorId": "a", "actorRunId": "r"}))).contains_key("condition")
        );
        assert!(refused(base(json!({"actorTaskId": "t"}))).contains_key("condition.actorTaskId"));
        assert!(refused(base(json!({"actorId": 7}))).contains_key("condition.actorId"));
        assert!(refused(base(json!("a"))).contains_key("condition"));
        let e = refused(json!({"eventTypes": "ACTOR.RUN.FAILED", "requestUrl": "x",
            "condition": {"actorRunId": "r"}, "isAdHoc": "no", "description": 5}));
        for field in ["eventTypes", "requestUrl", "isAdHoc", "description"] {
            assert!(e.contains_key(field), "{field}: {e:?}");
        }
        assert!(refused(json!([1])).contains_key("body"));
    }
}
