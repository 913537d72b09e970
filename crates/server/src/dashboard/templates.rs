//! The dashboard's templates (`crates/server/templates/`, compiled into the binary):
//! minijinja with HTML auto-escaping, so every value a page shows is escaped; no
//! template says `|safe` (a test keeps it so).

use std::sync::OnceLock;

use axum::http::StatusCode;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use super::Problem;
use super::html::{Nav, Notice, esc};

/// Every template, by name; `.html` names get HTML auto-escaping.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/layout.html")),
    ("agents.html", include_str!("../../templates/agents.html")),
    (
        "conversations.html",
        include_str!("../../templates/conversations.html"),
    ),
    ("leads.html", include_str!("../../templates/leads.html")),
    ("macros.html", include_str!("../../templates/macros.html")),
    ("sources.html", include_str!("../../templates/sources.html")),
    ("tickets.html", include_str!("../../templates/tickets.html")),
    (
        "conversation.html",
        include_str!("../../templates/conversation.html"),
    ),
    ("error.html", include_str!("../../templates/error.html")),
    ("keys.html", include_str!("../../templates/keys.html")),
    ("sign_in.html", include_str!("../../templates/sign_in.html")),
    (
        "settings.html",
        include_str!("../../templates/settings.html"),
    ),
    (
        "playground.html",
        include_str!("../../templates/playground.html"),
    ),
    ("link.html", include_str!("../../templates/link.html")),
    ("join.html", include_str!("../../templates/join.html")),
    ("members.html", include_str!("../../templates/members.html")),
    ("usage.html", include_str!("../../templates/usage.html")),
    (
        "workspaces.html",
        include_str!("../../templates/workspaces.html"),
    ),
];

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // The same escaping as `html::esc` (`& < > " '`): minijinja's own also turns
        // `/` into `&#x2f;`, which is valid but makes every link unreadable.
        env.set_formatter(|out, state, value| match value.as_str() {
            Some(text) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
                out.write_str(&esc(text)).map_err(minijinja::Error::from)
            }
            _ => minijinja::escape_formatter(out, state, value),
        });
        for (name, source) in TEMPLATES {
            // The templates are part of the binary and a test renders each: a
            // syntax error fails that test, not a request.
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "dashboard template does not parse");
            }
        }
        env
    })
}

/// What the layout needs, beside a page's own context.
#[derive(Serialize)]
pub struct Shell<'a> {
    pub title: &'a str,
    pub csrf: Option<&'a str>,
    pub notice: &'a Notice,
    pub nav: Option<NavContext<'a>>,
}

#[derive(Serialize)]
pub struct NavContext<'a> {
    workspace: Option<Named<'a>>,
    agent: Option<Named<'a>>,
    current: &'a str,
    /// The agent's dashboard path when the page is an agent's (`nav.base` in the
    /// templates).
    base: Option<String>,
}

#[derive(Serialize)]
struct Named<'a> {
    id: &'a str,
    name: &'a str,
}

impl<'a> From<&Nav<'a>> for NavContext<'a> {
    fn from(nav: &Nav<'a>) -> Self {
        let named = |(id, name): (&'a str, &'a str)| Named { id, name };
        let base = nav
            .workspace
            .zip(nav.agent)
            .map(|((ws, _), (agent, _))| format!("/dashboard/w/{ws}/agents/{agent}"));
        Self {
            workspace: nav.workspace.map(named),
            agent: nav.agent.map(named),
            current: nav.current,
            base,
        }
    }
}

/// Renders `name` with the shell's fields and the page's own (`page` must serialise
/// to a map). A failure is a bug of the template (each has a test): logged, and a
/// 500 page for the operator.
pub fn render(name: &str, shell: &Shell, page: impl Serialize) -> Result<String, Problem> {
    let context = minijinja::context! {
        ..minijinja::Value::from_serialize(shell),
        ..minijinja::Value::from_serialize(page)
    };
    environment()
        .get_template(name)
        .and_then(|t| t.render(context))
        .map_err(|e| {
            #[cfg(test)]
            eprintln!("{name}: {e:#}");
            tracing::error!(template = name, error = %e, "dashboard template failed");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "This page could not be rendered.",
            )
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn shell<'a>(notice: &'a Notice, nav: &'a Nav<'a>) -> Shell<'a> {
        Shell {
            title: "T <1>",
            csrf: Some("tok\"en"),
            notice,
            nav: Some(nav.into()),
        }
    }

    const NAV: Nav<'static> = Nav {
        workspace: Some(("ws-1", "Acme <Inc>")),
        agent: Some(("ag-1", "Bot \"one\"")),
        current: "sources",
    };

    #[test]
    fn every_template_parses() {
        for (name, _) in TEMPLATES {
            environment()
                .get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn the_layout_escapes_what_it_shows_and_marks_the_current_tab() {
        let notice = Notice {
            ok: Some("<b>saved</b>".into()),
            error: None,
        };
        let html = render("layout.html", &shell(&notice, &NAV), json!({})).unwrap();
        assert!(
            html.contains("<title>T &lt;1&gt; · agentbase</title>"),
            "{html}"
        );
        assert!(html.contains("content=\"tok&quot;en\""), "{html}");
        assert!(html.contains("Acme &lt;Inc&gt;"), "{html}");
        assert!(
            html.contains("<strong>Bot &quot;one&quot;</strong>"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;saved&lt;/b&gt;"), "{html}");
        assert!(
            html.contains("<a href=\"/dashboard/w/ws-1/agents/ag-1/sources\" aria-current=\"page\">Sources</a>"),
            "{html}"
        );
    }

    /// Every value reaches a page escaped: no template opts out.
    #[test]
    fn no_template_marks_a_value_safe() {
        for (name, source) in TEMPLATES {
            assert!(!source.contains("|safe"), "{name} uses |safe");
            assert!(
                !source.contains("autoescape false"),
                "{name} turns escaping off"
            );
        }
    }

    #[test]
    fn the_sources_page_escapes_record_values() {
        let notice = Notice::default();
        let page = json!({
            "running": true,
            "agent": { "status": "training", "last_trained": null },
            "auto_retrain": false,
            "jobs": [{ "stage": "embed", "status": "running", "done": 1, "total": 3 }],
            "sources": [{
                "id": "s\"1", "name": "<img src=x onerror=alert(1)>", "kind": "text",
                "status": "failed", "error": "<script>", "pages": 0, "size": 12,
                "added": "2026-12-04 10:00 UTC"
            }],
        });
        let html = render("sources.html", &shell(&notice, &NAV), page).unwrap();
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        assert!(
            html.contains("<div class=\"error\">&lt;script&gt;</div>"),
            "{html}"
        );
        assert!(html.contains("data-source-status=\"s&quot;1\""), "{html}");
        assert!(html.contains("<li>embed running: 1/3</li>"), "{html}");
        // The page's script polls only when this is exactly "true" (minijinja
        // writes a bare boolean as "True").
        assert!(html.contains("data-live=\"true\""), "{html}");
        assert!(
            html.contains("name=\"_csrf\" value=\"tok&quot;en\""),
            "{html}"
        );
    }

    #[test]
    fn the_tickets_page_selects_the_current_filter() {
        let notice = Notice::default();
        let page = json!({
            "filter": { "status": "open", "team": "", "assignee": "a\"b" },
            "statuses": [["", "any status"], ["open", "open"]],
            "teams": [["", "any team"]],
            "tickets": [],
        });
        let html = render("tickets.html", &shell(&notice, &NAV), page).unwrap();
        assert!(
            html.contains("<option value=\"open\" selected>open</option>"),
            "{html}"
        );
        assert!(html.contains("value=\"a&quot;b\""), "{html}");
        assert!(html.contains("No tickets match."), "{html}");
    }

    #[test]
    fn the_leads_page_shows_the_form_settings_and_escapes_leads() {
        let notice = Notice::default();
        let page = json!({
            "form": {
                "title": "Hi \"there\"",
                "fields": [
                    { "key": "email", "label": "Email", "active": true, "required": false },
                ],
                "show_after": 2,
            },
            "title_max": 100,
            "show_after_max": 50,
            "leads": [{
                "name": "<b>Eve</b>", "email": "e@x", "phone": "", "conversation": null,
                "submitted": "2026-12-04 10:00 UTC"
            }],
        });
        let html = render("leads.html", &shell(&notice, &NAV), page).unwrap();
        assert!(html.contains("value=\"Hi &quot;there&quot;\""), "{html}");
        assert!(
            html.contains("data-testid=\"lead-ask-email\" checked>"),
            "{html}"
        );
        assert!(html.contains("<td>&lt;b&gt;Eve&lt;/b&gt;</td>"), "{html}");
        assert!(
            html.contains("<span data-testid=\"lead-email\">e@x</span>"),
            "{html}"
        );
    }

    #[test]
    fn the_agents_page_links_each_agent_and_the_next_page() {
        let notice = Notice::default();
        let page = json!({
            "ws": "ws-1",
            "agents": [{ "id": "ag-1", "name": "<i>x</i>", "visibility": "private", "status": "trained" }],
            "next": "abc+/=",
        });
        let html = render("agents.html", &shell(&notice, &NAV), page).unwrap();
        assert!(
            html.contains("<a href=\"/dashboard/w/ws-1/agents/ag-1\">&lt;i&gt;x&lt;/i&gt;</a>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"?cursor=abc%2B/%3D\">Next page</a>"),
            "{html}"
        );
    }

    #[test]
    fn the_workspaces_page_gives_the_administrator_forms_and_a_member_none() {
        let notice = Notice::default();
        let plans = json!([["free", "free"], ["pro", "pro"]]);
        let admin = json!({
            "member": false,
            "workspaces": [{ "id": "ws-1", "name": "<b>Acme</b>", "plan": "pro", "created": "2026-12-04 10:00 UTC" }],
            "plans": plans,
        });
        let html = render("workspaces.html", &shell(&notice, &Nav::TOP), admin).unwrap();
        assert!(
            html.contains("<a href=\"/dashboard/w/ws-1/agents\">&lt;b&gt;Acme&lt;/b&gt;</a>"),
            "{html}"
        );
        assert!(
            html.contains("<option value=\"pro\" selected>pro</option>"),
            "{html}"
        );
        assert!(html.contains("action=\"/dashboard/workspaces\""), "{html}");
        let member = json!({
            "member": true,
            "workspaces": [{ "id": "ws-1", "name": "Acme", "role": "viewer" }],
            "plans": plans,
        });
        let html = render("workspaces.html", &shell(&notice, &Nav::TOP), member).unwrap();
        assert!(html.contains("<td>viewer</td>"), "{html}");
        assert!(
            !html.contains("name=\"plan\""),
            "no plan forms for a member: {html}"
        );
        assert!(!html.contains("New workspace"), "{html}");
    }

    #[test]
    fn the_keys_page_shows_a_new_key_once_and_revoke_buttons_for_live_keys() {
        let notice = Notice::default();
        let page = json!({
            "ws": "ws-1",
            "created": "agb_secret<&>",
            "keys": [
                { "id": "k1", "name": "<i>prod</i>", "prefix": "agb_k1", "created": "c", "last_used": "never", "revoked": false },
                { "id": "k2", "name": "old", "prefix": "agb_k2", "created": "c", "last_used": "never", "revoked": true },
            ],
        });
        let html = render("keys.html", &shell(&notice, &NAV), page).unwrap();
        assert!(
            html.contains("<code id=\"created-key\">agb_secret&lt;&amp;&gt;</code>"),
            "{html}"
        );
        assert!(html.contains("data-copy=\"#created-key\""), "{html}");
        assert!(html.contains("<td>&lt;i&gt;prod&lt;/i&gt;</td>"), "{html}");
        assert!(
            html.contains("action=\"/dashboard/w/ws-1/keys/k1/revoke\""),
            "{html}"
        );
        assert!(
            !html.contains("keys/k2/revoke"),
            "a revoked key has no button: {html}"
        );
        assert!(html.contains("<td>revoked</td>"), "{html}");
    }

    #[test]
    fn the_usage_page_draws_a_bar_per_day_and_escapes_names() {
        let notice = Notice::default();
        let page = json!({
            "days": 30, "total": "3.00", "plan": "pro", "monthly": 10000,
            "chart": {
                "width": "600", "height": "160", "pad": "20", "max": "3.00", "max_label": "3",
                "bars": [{ "x": "21.0", "y": "20.0", "width": "17.3", "height": "140.0", "credits": "3", "label": "3.00", "day": "2026-12-04" }],
            },
            "agents": [{ "name": "<script>", "credits": "3.00", "responses": 3 }],
            "models": [],
        });
        let html = render("usage.html", &shell(&notice, &NAV), page).unwrap();
        assert!(
            html.contains("<strong id=\"usage-total\">3.00</strong>"),
            "{html}"
        );
        assert!(
            html.contains("data-credits=\"3\"><title>2026-12-04: 3.00 credits</title></rect>"),
            "{html}"
        );
        assert!(html.contains("<td>&lt;script&gt;</td>"), "{html}");
    }

    #[test]
    fn the_members_page_offers_only_the_actions_the_viewer_may_take() {
        let notice = Notice::default();
        let page = json!({
            "ws": "ws-1",
            "link": { "email": "<a@b>", "url": "http://h/dashboard/invite/t0k" },
            "members": [
                { "id": "m1", "name": "<b>Al</b>", "email": "al@x", "role": "member", "status": "active", "joined": "j", "manageable": true },
                { "id": "m2", "name": "Bo", "email": "bo@x", "role": "owner", "status": "invited", "joined": "j", "manageable": false },
            ],
            "may_invite": false,
            "roles": [["member", "member"]],
        });
        let html = render("members.html", &shell(&notice, &NAV), page).unwrap();
        assert!(html.contains("Link for &lt;a@b&gt;"), "{html}");
        assert!(
            html.contains("<code id=\"member-link\">http://h/dashboard/invite/t0k</code>"),
            "{html}"
        );
        assert!(html.contains("<td>&lt;b&gt;Al&lt;/b&gt;</td>"), "{html}");
        assert!(
            html.contains("action=\"/dashboard/w/ws-1/members/m1/remove\""),
            "{html}"
        );
        assert!(
            !html.contains("members/m2/"),
            "no actions on an owner: {html}"
        );
        assert!(!html.contains("Invite a member"), "{html}");
    }

    #[test]
    fn the_link_form_carries_its_own_csrf_token_and_escapes_names() {
        let notice = Notice::default();
        let shell = Shell {
            title: "Set your password",
            csrf: None,
            notice: &notice,
            nav: None,
        };
        let page = json!({
            "token": "t0k", "form_csrf": "c5rf", "email": "e@x", "invite": "you are invited",
            "workspace": "<i>Acme</i>", "name": "\"Al\"", "min": 12,
        });
        let html = render("link.html", &shell, page).unwrap();
        assert!(html.contains("action=\"/dashboard/invite/t0k\"><input type=\"hidden\" name=\"_csrf\" value=\"c5rf\">"), "{html}");
        assert!(
            html.contains("e@x — you are invited in <strong>&lt;i&gt;Acme&lt;/i&gt;</strong>."),
            "{html}"
        );
        assert!(html.contains("value=\"&quot;Al&quot;\""), "{html}");
        assert!(html.contains("minlength=\"12\""), "{html}");
        assert!(
            !html.contains("Sign out"),
            "no navigation without a session: {html}"
        );
    }

    #[test]
    fn the_sign_in_and_error_pages_escape_what_they_echo() {
        let notice = Notice {
            ok: None,
            error: Some("Wrong <password>".into()),
        };
        let shell = Shell {
            title: "Sign in",
            csrf: None,
            notice: &notice,
            nav: None,
        };
        let page = json!({ "form_csrf": "c5rf", "next": "/dashboard/\"><script>" });
        let html = render("sign_in.html", &shell, page).unwrap();
        assert!(html.contains("name=\"_csrf\" value=\"c5rf\""), "{html}");
        assert!(
            html.contains("value=\"/dashboard/&quot;&gt;&lt;script&gt;\""),
            "{html}"
        );
        assert!(html.contains("Wrong &lt;password&gt;"), "{html}");
        let notice = Notice::default();
        let shell = Shell {
            title: "Not found",
            csrf: None,
            notice: &notice,
            nav: None,
        };
        let html = render("error.html", &shell, json!({ "message": "<img src=x>" })).unwrap();
        assert!(html.contains("<p>&lt;img src=x&gt;</p>"), "{html}");
        assert!(
            html.contains("<title>Not found · agentbase</title>"),
            "{html}"
        );
    }

    #[test]
    fn the_conversation_page_links_only_http_sources_and_offers_the_handoff() {
        let notice = Notice::default();
        let page = json!({
            "conversation": {
                "id": "c1", "user": "<u>", "source": "API", "status": "taken_over",
                "started": "s", "url": "/dashboard/w/ws-1/agents/ag-1/conversations/c1",
            },
            "after": 7,
            "messages": [{
                "id": "m1", "role": "assistant", "at": "t",
                "parts": [
                    { "kind": "text", "text": "<script>alert(1)</script>" },
                    { "kind": "call", "tool": "get<x>", "json": "{\"a\": 1}" },
                ],
                "sources": [
                    { "title": "Docs", "href": "https://d.example/a", "url": "https://d.example/a", "score": "0.90" },
                    { "title": "Evil", "href": null, "url": "javascript:alert(1)", "score": "0.50" },
                ],
                "assistant": true, "feedback": "none", "credits": "1", "finish": "stop",
            }],
        });
        let html = render("conversation.html", &shell(&notice, &NAV), page).unwrap();
        assert!(
            html.contains("<div class=\"text\">&lt;script&gt;alert(1)&lt;/script&gt;</div>"),
            "{html}"
        );
        assert!(
            html.contains("<code>get&lt;x&gt;</code><pre>{&quot;a&quot;: 1}</pre>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"https://d.example/a\" rel=\"noreferrer\">Docs</a> (0.90)"),
            "{html}"
        );
        assert!(
            html.contains("<li>Evil <code>javascript:alert(1)</code> (0.50)</li>"),
            "{html}"
        );
        assert!(!html.contains("href=\"javascript:"), "{html}");
        assert!(html.contains("data-testid=\"handoff-reply\""), "{html}");
        assert!(html.contains("data-after=\"7\""), "{html}");
        assert!(html.contains("· 1 credits · finish: stop</div>"), "{html}");
    }

    #[test]
    fn the_settings_and_playground_pages_escape_the_agents_text() {
        let notice = Notice::default();
        let page = json!({
            "agent": {
                "id": "ag-1", "name": "\"Bot\"", "instructions": "</textarea><script>", "temp": 0.5,
                "allowed_domains": "a.example", "initial_messages": "Hi", "suggested_messages": "",
                "credit_limit": "", "ip_limit": 20, "ip_timeframe": 60, "ip_message": "<slow>",
                "escalation": true,
            },
            "embed": "<script src=\"http://h/widget.js\" data-agent-id=\"ag-1\" defer></script>",
            "models": [["m1", "m1"], ["m2", "m2"]], "model": "m2",
            "visibilities": [["private", "Private (API only)"], ["public", "Public (widget)"]],
            "visibility": "public", "used": "1.50",
        });
        let html = render("settings.html", &shell(&notice, &NAV), page).unwrap();
        assert!(
            html.contains("rows=\"6\">&lt;/textarea&gt;&lt;script&gt;</textarea>"),
            "{html}"
        );
        assert!(
            html.contains("<code id=\"embed-snippet\">&lt;script src="),
            "{html}"
        );
        assert!(
            html.contains("<option value=\"m2\" selected>m2</option>"),
            "{html}"
        );
        assert!(
            html.contains("data-testid=\"agent-escalation\" checked>"),
            "{html}"
        );
        assert!(html.contains("value=\"&lt;slow&gt;\""), "{html}");
        assert!(
            html.contains("action=\"/dashboard/w/ws-1/agents/ag-1/delete\""),
            "{html}"
        );
        let html = render(
            "playground.html",
            &shell(&notice, &NAV),
            json!({ "name": "<b>" }),
        )
        .unwrap();
        assert!(html.contains("placeholder=\"Ask &lt;b&gt;…"), "{html}");
        assert!(
            html.contains("data-chat-url=\"/dashboard/w/ws-1/agents/ag-1/playground/chat\""),
            "{html}"
        );
    }
}
