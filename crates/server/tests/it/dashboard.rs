//! The dashboard over real HTTP: signing in (slow-hashed password, cookie flags,
//! sign-in throttling), CSRF on every form, and each page doing its job against
//! the same record the API serves. The browser scenario (crates/cli/tests/browser.rs)
//! drives the same pages in Chromium.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use crate::{TestApp, spawn, spawn_with};

const PASSWORD: &str = "correct horse battery";

pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c[name.len() + 1..].split(';').next().unwrap().to_owned())
}

fn set_cookie_line(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {headers:?}"))
        .to_owned()
}

/// The value of `<input ... name="{name}" value="…">` or `<meta name=… content=…>`.
pub(crate) fn attr_after(html: &str, marker: &str, attr: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in page"));
    let rest = &html[at..];
    let start = rest.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
    rest[start..start + rest[start..].find('"').unwrap()].to_owned()
}

/// A signed-in operator with its cookie and CSRF token.
pub(crate) struct Operator {
    http: reqwest::Client,
    base: String,
    cookie: String,
    pub(crate) csrf: String,
}

/// The login form's double-submit token and cookie.
async fn login_form(t: &TestApp) -> (String, String) {
    let r = no_redirects()
        .get(t.url("/dashboard/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = cookie_value(r.headers(), "agentbase_login").unwrap();
    let html = r.text().await.unwrap();
    (cookie, attr_after(&html, "name=\"_csrf\"", "value"))
}

async fn attempt(t: &TestApp, password: &str) -> reqwest::Response {
    let (cookie, token) = login_form(t).await;
    no_redirects()
        .post(t.url("/dashboard/login"))
        .header("cookie", format!("agentbase_login={cookie}"))
        .form(&[
            ("_csrf", token.as_str()),
            ("password", password),
            ("next", "/dashboard/workspaces"),
        ])
        .send()
        .await
        .unwrap()
}

pub(crate) async fn sign_in(t: &TestApp) -> Operator {
    t.app.sessions().set_admin_password(PASSWORD).await.unwrap();
    let r = attempt(t, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = cookie_value(r.headers(), "agentbase_session").expect("session cookie");
    Operator::with_cookie(t, cookie).await
}

/// Posts the login form with these fields (beside its CSRF token).
pub(crate) async fn login_with(t: &TestApp, fields: &[(&str, &str)]) -> reqwest::Response {
    let (cookie, token) = login_form(t).await;
    let mut form = vec![("_csrf", token.as_str())];
    form.extend_from_slice(fields);
    no_redirects()
        .post(t.url("/dashboard/login"))
        .header("cookie", format!("agentbase_login={cookie}"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

impl Operator {
    /// The operator a session cookie names, with the CSRF token its pages carry.
    pub(crate) async fn with_cookie(t: &TestApp, cookie: String) -> Operator {
        let mut op = Operator {
            http: no_redirects(),
            base: t.url(""),
            cookie,
            csrf: String::new(),
        };
        let (status, html) = op.get("/dashboard/workspaces").await;
        assert_eq!(status, StatusCode::OK, "{html}");
        op.csrf = attr_after(&html, "name=\"csrf-token\"", "content");
        op
    }
}

impl Operator {
    /// A request with the session cookie (redirects are not followed).
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", format!("agentbase_session={}", self.cookie))
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// Posts a form with the session's CSRF token.
    pub(crate) async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = vec![("_csrf", &self.csrf)];
        form.extend_from_slice(fields);
        self.post_raw(path, &form).await
    }

    pub(crate) async fn post_raw(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", format!("agentbase_session={}", self.cookie))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Follows a post's 303 and returns the page it lands on.
    pub(crate) async fn post_and_follow(&self, path: &str, fields: &[(&str, &str)]) -> String {
        let r = self.post(path, fields).await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{path}: {:?}",
            r.text().await
        );
        let to = r.headers()[LOCATION].to_str().unwrap().to_owned();
        let (status, html) = self.get(&to).await;
        assert_eq!(status, StatusCode::OK, "{to}");
        html
    }
}

#[tokio::test]
async fn signing_in_checks_the_slow_hash_and_sets_a_strict_http_only_cookie() {
    let t = spawn().await;
    t.app.sessions().set_admin_password(PASSWORD).await.unwrap();
    let stored = t.app.record().admin_password_hash().await.unwrap().unwrap();
    assert!(
        stored.starts_with("$argon2id$"),
        "stored as Argon2id: {stored}"
    );
    assert!(!stored.contains(PASSWORD));

    let wrong = attempt(&t, "not the password").await;
    assert_eq!(
        wrong.status(),
        StatusCode::OK,
        "the form again, with a message"
    );
    assert!(cookie_value(wrong.headers(), "agentbase_session").is_none());
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("That password is not right.")
    );

    let right = attempt(&t, PASSWORD).await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(right.headers()[LOCATION], "/dashboard/workspaces");
    let line = set_cookie_line(right.headers(), "agentbase_session");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/dashboard"] {
        assert!(line.contains(flag), "{flag} in {line}");
    }
    assert!(
        !line.contains("Secure"),
        "plain HTTP: no Secure flag: {line}"
    );

    // Behind a TLS-terminating proxy the cookie is Secure.
    let (cookie, token) = login_form(&t).await;
    let tls = no_redirects()
        .post(t.url("/dashboard/login"))
        .header("cookie", format!("agentbase_login={cookie}"))
        .header("x-forwarded-proto", "https")
        .form(&[("_csrf", token.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(set_cookie_line(tls.headers(), "agentbase_session").contains("; Secure"));
}

#[tokio::test]
async fn pages_need_a_session_and_sign_out_ends_it() {
    let t = spawn().await;
    let anonymous = no_redirects()
        .get(t.url(&format!("/dashboard/w/{}/keys", t.workspace_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    let to = anonymous.headers()[LOCATION].to_str().unwrap();
    assert!(
        to.starts_with("/dashboard/login?next=%2Fdashboard%2Fw%2F"),
        "{to}"
    );
    // A forged cookie is no session; a post without one is refused outright.
    let forged = no_redirects()
        .post(t.url(&format!("/dashboard/w/{}/keys", t.workspace_id)))
        .header("cookie", "agentbase_session=forged")
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert!(
        t.app
            .accounts()
            .keys(Some(&t.workspace_id))
            .await
            .unwrap()
            .len()
            == 1
    );

    let op = sign_in(&t).await;
    let (status, _) = op.get("/dashboard/workspaces").await;
    assert_eq!(status, StatusCode::OK);
    let out = op.post("/dashboard/logout", &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let (status, _) = op.get("/dashboard/workspaces").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the old cookie no longer works"
    );
    // Changing the password signs everyone out too.
    let op = sign_in(&t).await;
    t.app
        .sessions()
        .set_admin_password("another long password")
        .await
        .unwrap();
    assert_eq!(
        op.get("/dashboard/workspaces").await.0,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_login_form_needs_its_token_and_attempts_are_throttled() {
    let t = spawn().await;
    t.app.sessions().set_admin_password(PASSWORD).await.unwrap();
    // Without the double-submit cookie the right password still does not sign in.
    let r = no_redirects()
        .post(t.url("/dashboard/login"))
        .form(&[("_csrf", "guess"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the form again, with a message");
    assert!(cookie_value(r.headers(), "agentbase_session").is_none());
    assert!(r.text().await.unwrap().contains("The sign-in form expired"));

    for _ in 0..10 {
        let r = attempt(&t, "wrong").await;
        assert!(cookie_value(r.headers(), "agentbase_session").is_none());
    }
    let throttled = attempt(&t, PASSWORD).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().contains_key("retry-after"));
    assert!(cookie_value(throttled.headers(), "agentbase_session").is_none());
    t.clock.advance_ms(61_000);
    assert_eq!(attempt(&t, PASSWORD).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn forms_without_the_csrf_token_or_from_another_site_change_nothing() {
    let t = spawn().await;
    let op = sign_in(&t).await;
    let path = format!("/dashboard/w/{}/keys", t.workspace_id);
    let missing = op.post_raw(&path, &[("name", "sneaky")]).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let wrong = op
        .post_raw(&path, &[("_csrf", "wrong"), ("name", "sneaky")])
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let cross = op
        .http
        .post(t.url(&path))
        .header("cookie", format!("agentbase_session={}", op.cookie))
        .header("origin", "http://evil.example")
        .form(&[("_csrf", op.csrf.as_str()), ("name", "sneaky")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let names: Vec<String> = t
        .app
        .accounts()
        .keys(Some(&t.workspace_id))
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["first key"], "no key was made");
}

#[tokio::test]
async fn a_new_key_is_shown_once_and_works_and_a_revoked_key_does_not() {
    let t = spawn().await;
    let op = sign_in(&t).await;
    let path = format!("/dashboard/w/{}/keys", t.workspace_id);
    let r = op.post(&path, &[("name", "from the dashboard")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    let shown = attr_after(&html, "id=\"created-key\"", "id");
    assert_eq!(shown, "created-key");
    let start = html.find("id=\"created-key\">").unwrap() + "id=\"created-key\">".len();
    let key = &html[start..start + html[start..].find('<').unwrap()];
    assert!(key.starts_with("agb_"), "{key}");
    assert!(html.contains("data-copy=\"#created-key\""), "a copy button");

    // It works against the API, and the list never shows it again.
    let api = t.client_for(key);
    assert!(api.list_agents(None, None).await.is_ok());
    let (_, listing) = op.get(&path).await;
    assert!(!listing.contains(key));
    let prefix = &key[..key.rfind('_').unwrap()];
    assert!(listing.contains(prefix), "the prefix is listed: {prefix}");
    assert!(listing.contains("from the dashboard"));

    let id = prefix.strip_prefix("agb_").unwrap();
    let page = op
        .post_and_follow(&format!("{path}/{id}/revoke"), &[])
        .await;
    assert!(page.contains("revoked"), "{page}");
    t.clock.advance_ms(2_000);
    assert!(api.list_agents(None, None).await.is_err(), "revoked");
    // A key id of another workspace cannot be revoked from this one.
    let (other_ws, _) = t.other_workspace(agentbase_core::Plan::Standard).await;
    let other = op
        .post(
            &format!(
                "/dashboard/w/{other_ws}/keys/{}/revoke",
                t.key.split('_').nth(1).unwrap()
            ),
            &[],
        )
        .await;
    assert_eq!(other.status(), StatusCode::SEE_OTHER);
    assert!(
        other.headers()[LOCATION]
            .to_str()
            .unwrap()
            .contains("error=")
    );
}

#[tokio::test]
async fn agents_are_created_and_configured_and_bad_settings_are_explained() {
    let t = spawn_with(|s| {
        s.models.insert(
            "scripted".into(),
            agentbase_service::settings::ModelSettings {
                provider: "scripted".into(),
                upstream: String::new(),
                credits: 1.0,
            },
        );
    })
    .await;
    let op = sign_in(&t).await;
    let ws = &t.workspace_id;
    let page = op
        .post_and_follow(
            &format!("/dashboard/w/{ws}/agents"),
            &[("name", "<b>Docs</b> bot")],
        )
        .await;
    assert!(
        page.contains("&lt;b&gt;Docs&lt;/b&gt; bot"),
        "names are escaped"
    );
    assert!(!page.contains("<b>Docs</b>"));
    let agent = t
        .app
        .agents()
        .list(ws, None, 10)
        .await
        .unwrap()
        .items
        .remove(0);
    assert!(
        page.contains(&format!("<code id=\"agent-id\">{}</code>", agent.id)),
        "the agent id with a copy button"
    );
    assert!(
        page.contains("/widget.js\" data-agent-id=")
            || page.contains("/widget.js&quot; data-agent-id="),
        "the embed snippet"
    );

    let settings = format!("/dashboard/w/{ws}/agents/{}", agent.id);
    let saved = op
        .post_and_follow(
            &settings,
            &[
                ("name", "Docs bot"),
                ("instructions", "Answer briefly."),
                ("model", "scripted"),
                ("temp", "0.3"),
                ("visibility", "public"),
                ("allowedDomains", "example.com\n127.0.0.1:4000\n"),
                ("initialMessages", "Hi! Ask me about the docs."),
                ("suggestedMessages", "What is a crate?\nHow do I install?"),
                ("creditLimit", "50"),
                ("ipLimit", "5"),
                ("ipTimeframe", "60"),
                ("ipMessage", "Slow down, please."),
            ],
        )
        .await;
    assert!(saved.contains("Settings saved."), "{saved}");
    t.clock.advance_ms(2_000);
    let a = t.app.agents().get(ws, &agent.id).await.unwrap();
    assert_eq!(a.name, "Docs bot");
    assert_eq!(a.instructions, "Answer briefly.");
    assert_eq!(a.model, "scripted");
    assert_eq!(a.temp, 0.3);
    assert_eq!(a.visibility.as_str(), "public");
    assert_eq!(
        a.allowed_domains,
        Some(vec!["example.com".to_owned(), "127.0.0.1:4000".to_owned()])
    );
    assert_eq!(a.initial_messages, ["Hi! Ask me about the docs."]);
    assert_eq!(
        a.suggested_messages.as_ref().unwrap()[1]["text"],
        "How do I install?"
    );
    assert_eq!(a.credit_limit, Some(50));
    assert_eq!(
        (a.ip_rate_limits.limit, a.ip_rate_limits.timeframe_secs),
        (5, 60)
    );
    assert_eq!(a.ip_rate_limits.message, "Slow down, please.");
    assert!(
        a.actions.is_empty(),
        "the escalation box was not on that post"
    );

    // The escalation box adds the built-in action beside the agent's own actions,
    // and unticking it removes only that one.
    let own = agentbase_core::Action {
        name: "lookupOrder".into(),
        description: "Find an order".into(),
        parameters: serde_json::json!({"type": "object", "properties": {}}),
    };
    t.app
        .agents()
        .set_actions(ws, &agent.id, vec![own.clone()])
        .await
        .unwrap();
    let page = op.get(&settings).await.1;
    assert!(
        page.contains("data-testid=\"agent-escalation\" >"),
        "unticked"
    );
    op.post_and_follow(
        &settings,
        &[
            ("name", "Docs bot"),
            ("escalationShown", "1"),
            ("escalation", "1"),
        ],
    )
    .await;
    let a = t.app.agents().get(ws, &agent.id).await.unwrap();
    assert_eq!(
        a.actions,
        [own.clone(), agentbase_core::Action::escalation()],
        "added"
    );
    let page = op.get(&settings).await.1;
    assert!(
        page.contains("data-testid=\"agent-escalation\" checked>"),
        "ticked"
    );
    op.post_and_follow(&settings, &[("name", "Docs bot"), ("escalationShown", "1")])
        .await;
    let a = t.app.agents().get(ws, &agent.id).await.unwrap();
    assert_eq!(a.actions, [own], "only the built-in one is removed");

    // Bad values come back as a message on the form, never a 500; nothing changes.
    for (field, value, says) in [
        ("temp", "hot", "Temperature must be a number."),
        ("temp", "3", "temp"),
        ("model", "no-such-model", "model"),
        ("ipLimit", "0", "ipRateLimits"),
        ("name", "", "name"),
    ] {
        let mut fields = vec![("name", "Docs bot"), ("visibility", "public")];
        fields.retain(|(k, _)| *k != field);
        fields.push((field, value));
        let r = op.post(&settings, &fields).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{field}={value}");
        let to = r.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(to.contains("error="), "{field}={value}: {to}");
        let (_, html) = op.get(&to).await;
        assert!(html.contains("class=\"notice error\""), "{field}={value}");
        assert!(html.contains(says), "{field}={value} says {says}");
    }
    t.clock.advance_ms(2_000);
    assert_eq!(t.app.agents().get(ws, &agent.id).await.unwrap().temp, 0.3);

    let gone = op.post_and_follow(&format!("{settings}/delete"), &[]).await;
    assert!(gone.contains("Agent deleted."));
    assert!(t.app.agents().get(ws, &agent.id).await.is_err());
}

#[tokio::test]
async fn conversations_list_filter_and_show_tool_calls_feedback_and_usage() {
    let t = spawn().await;
    let op = sign_in(&t).await;
    let ws = t.workspace_id.clone();
    let agent = t.scripted_agent().await;
    let first = t.say(&agent, None, "hello there").await;
    let conversation = first.data.metadata.conversation_id.clone();
    t.client
        .chat(
            &agent,
            &agentbase_client::types::ChatRequest {
                message: Some("[[tool:lookup {\"q\":\"orders\"}]]".into()),
                conversation_id: Some(conversation.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    t.client
        .chat(
            &agent,
            &agentbase_client::types::ChatRequest {
                message: Some("someone else".into()),
                user_id: Some("user-42".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    t.client
        .set_feedback(
            &agent,
            &conversation,
            &first.data.id,
            Some(agentbase_client::types::FeedbackValue::Positive),
        )
        .await
        .unwrap();

    let base = format!("/dashboard/w/{ws}/agents/{agent}/conversations");
    let (status, all) = op.get(&base).await;
    assert_eq!(status, StatusCode::OK);
    assert!(all.contains("2 conversation(s) match."), "{all}");
    let (_, only_user) = op.get(&format!("{base}?userId=user-42")).await;
    assert!(only_user.contains("1 conversation(s) match."));
    assert!(only_user.contains("user-42"));
    let (_, none) = op
        .get(&format!("{base}?startDate=2000-01-01&endDate=2000-01-02"))
        .await;
    assert!(none.contains("0 conversation(s) match."));
    let (status, bad) = op.get(&format!("{base}?startDate=yesterday")).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a bad date is explained, not a 500"
    );
    assert!(bad.contains("startDate"));

    let (status, thread) = op.get(&format!("{base}/{conversation}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(thread.contains("Echo: hello there"), "{thread}");
    assert!(
        thread.contains("Tool call") && thread.contains("lookup"),
        "tool calls shown"
    );
    assert!(
        thread.contains("&quot;q&quot;: &quot;orders&quot;"),
        "with their input"
    );
    assert!(
        thread.contains("<span class=\"feedback\">positive</span>"),
        "feedback shown"
    );
    let (status, _) = op.get(&format!("{base}/no-such-conversation")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, usage) = op.get(&format!("/dashboard/w/{ws}/usage")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        usage.contains("<strong id=\"usage-total\">3.00</strong>"),
        "{usage}"
    );
    assert!(usage.contains("<svg id=\"usage-chart\""));
    assert!(
        usage.contains("data-credits=\"3\""),
        "today's bar carries 3 credits"
    );
    assert!(usage.contains("<code>scripted</code>"), "per model");
}

#[tokio::test]
async fn the_playground_streams_with_the_session_and_its_csrf_header_only() {
    let t = spawn().await;
    let op = sign_in(&t).await;
    let agent = t.scripted_agent().await;
    let path = format!(
        "/dashboard/w/{}/agents/{agent}/playground/chat",
        t.workspace_id
    );
    let send = |csrf: Option<&str>| {
        let mut r = op
            .http
            .post(t.url(&path))
            .header("cookie", format!("agentbase_session={}", op.cookie))
            .json(&serde_json::json!({"message": "hi playground"}));
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        r.send()
    };
    let refused = send(None).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AUTH_CSRF_TOKEN_INVALID");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Reload the page")
    );

    let ok = send(Some(&op.csrf)).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["content-type"], "text/event-stream");
    let text = ok.text().await.unwrap();
    let frames = crate::frames(&text);
    let said: String = frames
        .iter()
        .filter(|f| f["type"] == "text-delta")
        .map(|f| f["delta"].as_str().unwrap())
        .collect();
    assert_eq!(said, "Echo: hi playground");
    let finish = frames.iter().find(|f| f["type"] == "finish").unwrap();
    let conversation = finish["messageMetadata"]["conversationId"]
        .as_str()
        .unwrap();
    let stored = t
        .app
        .record()
        .conversation(&t.workspace_id, conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.source, "Playground");
}

#[tokio::test]
async fn sources_are_added_listed_retrained_and_deleted_from_the_sources_page() {
    let t = spawn().await;
    let op = sign_in(&t).await;
    let ws = t.workspace_id.clone();
    let agent = t.scripted_agent().await;
    let base = format!("/dashboard/w/{ws}/agents/{agent}");
    let form = reqwest::multipart::Form::new()
        .text("_csrf", op.csrf.clone())
        .text("kind", "text")
        .text("name", "Opening hours")
        .text("content", "We are open from nine to five.");
    let r = op
        .http
        .post(t.url(&format!("{base}/sources")))
        .header("cookie", format!("agentbase_session={}", op.cookie))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()[LOCATION].to_str().unwrap().contains("ok="));
    let (_, page) = op.get(&format!("{base}/sources")).await;
    assert!(page.contains("Opening hours"));
    assert!(page.contains("data-source-status="));
    let (status, progress) = op.get(&format!("{base}/training.json")).await;
    assert_eq!(status, StatusCode::OK);
    let progress: serde_json::Value = serde_json::from_str(&progress).unwrap();
    assert_eq!(progress["sources"].as_array().unwrap().len(), 1);

    // A multipart form without the token is refused; a corrupt file is explained.
    let forged = reqwest::multipart::Form::new()
        .text("kind", "text")
        .text("name", "x")
        .text("content", "y");
    let r = op
        .http
        .post(t.url(&format!("{base}/sources")))
        .header("cookie", format!("agentbase_session={}", op.cookie))
        .multipart(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let pdf = reqwest::multipart::Form::new()
        .text("_csrf", op.csrf.clone())
        .text("kind", "file")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"%PDF-1.7 not really".to_vec())
                .file_name("broken.pdf"),
        );
    let r = op
        .http
        .post(t.url(&format!("{base}/sources")))
        .header("cookie", format!("agentbase_session={}", op.cookie))
        .multipart(pdf)
        .send()
        .await
        .unwrap();
    assert!(r.headers()[LOCATION].to_str().unwrap().contains("error="));

    let retrain = op.post_and_follow(&format!("{base}/retrain"), &[]).await;
    assert!(retrain.contains("Retraining 1 source(s)."), "{retrain}");
    let sources = list_sources(&t, &agent).await;
    assert_eq!(sources.len(), 1);
    let id = sources[0]["id"].as_str().unwrap().to_owned();
    let deleted = op
        .post_and_follow(&format!("{base}/sources/{id}/delete"), &[])
        .await;
    assert!(deleted.contains("Deleted “Opening hours”."), "{deleted}");
    assert!(list_sources(&t, &agent).await.is_empty());
}

async fn list_sources(t: &TestApp, agent: &str) -> Vec<serde_json::Value> {
    let body: serde_json::Value = t
        .raw(
            reqwest::Method::GET,
            &format!("/api/v2/agents/{agent}/sources"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"].as_array().unwrap().clone()
}

/// Posts a multipart source form (with the session's token) and returns where it
/// redirects.
async fn add_source_form(op: &Operator, path: &str, form: reqwest::multipart::Form) -> String {
    let r = op
        .http
        .post(format!("{}{path}", op.base))
        .header("cookie", format!("agentbase_session={}", op.cookie))
        .multipart(form.text("_csrf", op.csrf.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    r.headers()[LOCATION].to_str().unwrap().to_owned()
}

async fn wait_all_trained(t: &TestApp, agent: &str, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..600 {
        let sources = list_sources(t, agent).await;
        if sources.len() == n && sources.iter().all(|s| s["status"] == "trained") {
            return sources;
        }
        assert!(
            !sources.iter().any(|s| s["status"] == "error"),
            "{sources:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("not trained: {:?}", list_sources(t, agent).await);
}

#[tokio::test]
async fn qna_website_and_apify_sources_come_from_their_forms_and_plans_change() {
    use reqwest::multipart::{Form, Part};
    let pages = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::from([
        (
            "docs/".to_owned(),
            crate::sources::html(
                "Docs",
                "Guides for the Fiorenza espresso machine.",
                &["/docs/descaling"],
            ),
        ),
        (
            "docs/descaling".to_owned(),
            crate::sources::html(
                "Descaling",
                "Descale the boiler every two months.",
                &["/docs/"],
            ),
        ),
    ])));
    let site = crate::sources::docs_site(pages).await;
    let t = crate::spawn_knowledge(|s| s.crawler.allow_private_networks = true).await;
    let op = sign_in(&t).await;
    let agent = t.scripted_agent().await;
    let path = format!("/dashboard/w/{}/agents/{agent}/sources", t.workspace_id);

    let to = add_source_form(
        &op,
        &path,
        Form::new()
            .text("kind", "qna")
            .text("name", "Warranty")
            .text(
                "questions",
                "How long is the warranty?\nIs there a warranty?\n",
            )
            .text("answer", "Two years, parts and labour."),
    )
    .await;
    assert!(to.contains("ok="), "{to}");
    let to = add_source_form(
        &op,
        &path,
        Form::new()
            .text("kind", "website")
            .text("url", format!("http://{site}/docs/"))
            .text("linkType", "crawl")
            .text("excludePaths", ""),
    )
    .await;
    assert!(to.contains("ok="), "{to}");
    let dataset = serde_json::json!([{"url": "https://docs.example.com/grinding", "metadata": {"title": "Grinding"},
        "text": "Grind the beans fine: a double shot takes twenty-five seconds."}]);
    let to = add_source_form(
        &op,
        &path,
        Form::new()
            .text("kind", "apify")
            .text("name", "Apify run")
            .part(
                "file",
                Part::bytes(dataset.to_string().into_bytes()).file_name("dataset.json"),
            ),
    )
    .await;
    assert!(to.contains("ok="), "{to}");
    // An unknown kind and a missing file are explained, not 500s.
    let to = add_source_form(&op, &path, Form::new().text("kind", "notion")).await;
    assert!(to.contains("error="), "{to}");
    let to = add_source_form(&op, &path, Form::new().text("kind", "apify")).await;
    assert!(to.contains("error=Choose%20a%20file"), "{to}");

    let sources = wait_all_trained(&t, &agent, 3).await;
    let by_name = |n: &str| {
        sources
            .iter()
            .find(|s| s["name"].as_str().unwrap().contains(n))
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("Warranty")["type"], "qna");
    let site_source = by_name(&format!("{site}/docs/"));
    assert_eq!(site_source["type"], "link");
    assert_eq!(
        site_source["metadata"]["children"]["included"], 2,
        "{site_source}"
    );
    assert_eq!(by_name("Apify run")["type"], "file");
    let (_, page) = op.get(&path).await;
    assert_eq!(page.matches(">trained</span>").count(), 3, "statuses shown");

    // Auto-retrain is a toggle once the agent is trained.
    let on = op
        .post_and_follow(
            &format!(
                "/dashboard/w/{}/agents/{agent}/auto-retrain",
                t.workspace_id
            ),
            &[("enabled", "1")],
        )
        .await;
    assert!(on.contains("Automatic retraining is on."), "{on}");
    t.clock.advance_ms(2_000);
    assert!(
        t.app
            .agents()
            .get(&t.workspace_id, &agent)
            .await
            .unwrap()
            .auto_retrain
    );

    // Plans change from the workspaces page; a made-up plan is refused.
    let page = op
        .post_and_follow(
            &format!("/dashboard/w/{}/plan", t.workspace_id),
            &[("plan", "pro")],
        )
        .await;
    assert!(page.contains("Plan changed to pro."), "{page}");
    assert_eq!(
        t.app
            .record()
            .workspace(&t.workspace_id)
            .await
            .unwrap()
            .unwrap()
            .plan,
        agentbase_core::Plan::Pro
    );
    let r = op
        .post(
            &format!("/dashboard/w/{}/plan", t.workspace_id),
            &[("plan", "platinum")],
        )
        .await;
    assert!(r.headers()[LOCATION].to_str().unwrap().contains("error="));
}

#[tokio::test]
async fn pages_send_a_strict_policy_and_never_link_a_non_http_url() {
    use agentbase_core::conversation::{Citation, Message, MessageRole, Part};
    let t = spawn().await;
    let op = sign_in(&t).await;
    let agent = t.scripted_agent().await;
    let first = t.say(&agent, None, "hello").await;
    let conversation = first.data.metadata.conversation_id.clone();
    // A citation whose URL came from a hostile dataset item.
    let cite = |title: &str, url: &str| Citation {
        source_id: "src".into(),
        chunk_id: "chunk".into(),
        title: title.into(),
        url: Some(url.into()),
        score: 0.9,
    };
    t.app
        .record()
        .insert_message(&Message {
            id: agentbase_core::ids::message_id(),
            conversation_id: conversation.clone(),
            seq: 10,
            role: MessageRole::Assistant,
            parts: vec![Part::Text {
                text: "cited".into(),
            }],
            created_at: t.app.now(),
            feedback: None,
            score: None,
            finish_reason: Some("stop".into()),
            credits: 0.0,
            spam: false,
            sources: vec![
                cite("Evil", "javascript:alert(document.cookie)"),
                cite("Data", "data:text/html,<script>alert(1)</script>"),
                cite("Good", "https://docs.example.com/refunds"),
            ],
        })
        .await
        .unwrap();
    let path = format!(
        "/dashboard/w/{}/agents/{agent}/conversations/{conversation}",
        t.workspace_id
    );
    let r = op
        .http
        .get(format!("{}{path}", op.base))
        .header("cookie", format!("agentbase_session={}", op.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    for directive in [
        "script-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    let html = r.text().await.unwrap();
    assert!(!html.contains("href=\"javascript:"), "{html}");
    assert!(!html.contains("href=\"data:text"), "{html}");
    assert!(
        html.contains("<code>javascript:alert(document.cookie)</code>"),
        "{html}"
    );
    assert!(
        html.contains("href=\"https://docs.example.com/refunds\""),
        "{html}"
    );
    // The sign-in page and the assets carry the policy too.
    let login = reqwest::get(t.url("/dashboard/login")).await.unwrap();
    assert!(login.headers().contains_key("content-security-policy"));
}
