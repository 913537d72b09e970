//! Workspaces and plans, API keys (shown once at creation), and usage.

use std::collections::BTreeMap;
use std::fmt::Write;

use agentbase_core::Plan;
use axum::extract::{Path, State};
use axum::response::Response;

use super::auth::{Posted, Session};
use super::html::{self, Nav, Notice, copyable, csrf_field, esc, table, when};
use super::{Problem, back, redirect, render, workspace};
use crate::AppState;
use crate::extract::QueryMap;

pub fn notice(q: &QueryMap) -> Notice {
    Notice {
        ok: q.get("ok").map(str::to_owned),
        error: q.get("error").map(str::to_owned),
    }
}

fn plan_options(current: Plan) -> String {
    html::options(
        Plan::ALL.iter().map(|p| (p.as_str(), p.as_str())),
        current.as_str(),
    )
}

pub async fn list(
    State(state): State<AppState>,
    s: Session,
    q: QueryMap,
) -> Result<Response, Problem> {
    // A member sees the workspaces they belong to, with their role and without
    // the administrator's forms (plans, new workspaces).
    if let Some(m) = &s.member {
        return member_list(&state, &s, &m.id, &q).await;
    }
    let workspaces = state.app.accounts().workspaces().await?;
    let rows: Vec<Vec<String>> = workspaces
        .iter()
        .map(|w| {
            let base = format!("/dashboard/w/{}", esc(&w.id));
            vec![
                format!("<a href=\"{base}/agents\">{}</a>", esc(&w.name)),
                format!("<code>{}</code>", esc(&w.id)),
                format!(
                    "<form class=\"inline\" method=\"post\" action=\"{base}/plan\">{}\
                     <label class=\"sr-only\" for=\"plan-{id}\">Plan of {name}</label>\
                     <select id=\"plan-{id}\" name=\"plan\">{}</select>\
                     <button type=\"submit\">Change plan</button></form>",
                    csrf_field(&s.csrf_token),
                    plan_options(w.plan),
                    id = esc(&w.id),
                    name = esc(&w.name),
                ),
                format!("<a href=\"{base}/keys\">Keys</a> · <a href=\"{base}/usage\">Usage</a>"),
                when(w.created_at),
            ]
        })
        .collect();
    let body = format!(
        "{}<section class=\"card\"><h2>New workspace</h2>\
         <form method=\"post\" action=\"/dashboard/workspaces\">{}\
         <label for=\"ws-name\">Name</label><input id=\"ws-name\" name=\"name\" required maxlength=\"100\">\
         <label for=\"ws-plan\">Plan</label><select id=\"ws-plan\" name=\"plan\">{}</select>\
         <button type=\"submit\">Create workspace</button></form></section>",
        table(
            "Workspaces",
            &["Name", "ID", "Plan", "", "Created"],
            &rows,
            "No workspaces yet."
        ),
        csrf_field(&s.csrf_token),
        plan_options(Plan::Standard)
    );
    Ok(render(&s, "Workspaces", &Nav::TOP, &notice(&q), &body))
}

async fn member_list(
    state: &AppState,
    s: &Session,
    member_id: &str,
    q: &QueryMap,
) -> Result<Response, Problem> {
    let rows: Vec<Vec<String>> = state
        .app
        .member_workspaces(member_id)
        .await?
        .iter()
        .map(|(w, role)| {
            let base = format!("/dashboard/w/{}", esc(&w.id));
            vec![
                format!("<a href=\"{base}/agents\">{}</a>", esc(&w.name)),
                format!("<code>{}</code>", esc(&w.id)),
                role.as_str().to_owned(),
                format!(
                    "<a href=\"{base}/members\">Members</a> · <a href=\"{base}/usage\">Usage</a>"
                ),
            ]
        })
        .collect();
    let body = table(
        "Your workspaces",
        &["Name", "ID", "Your role", ""],
        &rows,
        "You belong to no workspace any more.",
    );
    Ok(render(s, "Workspaces", &Nav::TOP, &notice(q), &body))
}

fn parse_plan(form: &super::auth::Form) -> Result<Plan, Problem> {
    form.get("plan")
        .unwrap_or("standard")
        .parse::<Plan>()
        .map_err(|_| Problem::bad("Choose one of the plans listed."))
}

pub async fn create(State(state): State<AppState>, p: Posted) -> Response {
    let result = async {
        let plan = parse_plan(&p.form)?;
        let w = state
            .app
            .accounts()
            .create_workspace(p.form.get("name").unwrap_or(""), plan)
            .await?;
        Ok::<_, Problem>(w)
    }
    .await;
    match result {
        Ok(w) => redirect(&format!("/dashboard/w/{}/agents", w.id)),
        Err(e) => back("/dashboard/workspaces", Err(e)),
    }
}

pub async fn set_plan(
    State(state): State<AppState>,
    Path(ws): Path<String>,
    p: Posted,
) -> Response {
    let result = async {
        let plan = parse_plan(&p.form)?;
        state.app.accounts().set_plan(&ws, plan).await?;
        Ok(format!("Plan changed to {}.", plan.as_str()))
    }
    .await;
    back("/dashboard/workspaces", result)
}

fn keys_page(
    s: &Session,
    w: &super::Ws,
    keys: &[agentbase_core::ApiKey],
    created: Option<&str>,
    notice: &Notice,
) -> Response {
    let base = format!("/dashboard/w/{}", esc(&w.workspace.id));
    let mut body = String::new();
    if let Some(plaintext) = created {
        let _ = write!(
            body,
            "<section class=\"card reveal\" aria-labelledby=\"new-key\"><h2 id=\"new-key\">Your new API key</h2>\
             <p>Copy it now: it is shown <strong>only once</strong> and cannot be shown again.</p>{}</section>",
            copyable("created-key", plaintext)
        );
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            let state = if k.revoked_at.is_some() {
                "revoked".to_owned()
            } else {
                format!(
                    "<form class=\"inline\" method=\"post\" action=\"{base}/keys/{}/revoke\">{}\
                     <button class=\"danger\" type=\"submit\" aria-label=\"Revoke {}\">Revoke</button></form>",
                    esc(&k.id),
                    csrf_field(&s.csrf_token),
                    esc(&k.prefix)
                )
            };
            vec![
                esc(&k.name),
                format!("<code>{}…</code>", esc(&k.prefix)),
                when(k.created_at),
                k.last_used_at.map_or_else(|| "never".into(), when),
                state,
            ]
        })
        .collect();
    let _ = write!(
        body,
        "{}<section class=\"card\"><h2>New key</h2><form method=\"post\" action=\"{base}/keys\">{}\
         <label for=\"key-name\">Name</label><input id=\"key-name\" name=\"name\" required maxlength=\"100\" placeholder=\"production\">\
         <button type=\"submit\">Create key</button></form></section>",
        table(
            "API keys",
            &["Name", "Prefix", "Created", "Last used", ""],
            &rows,
            "No keys yet."
        ),
        csrf_field(&s.csrf_token)
    );
    let nav = Nav {
        workspace: Some((&w.workspace.id, &w.workspace.name)),
        agent: None,
        current: "keys",
    };
    render(s, "API keys", &nav, notice, &body)
}

pub async fn keys(
    State(state): State<AppState>,
    s: Session,
    Path(ws): Path<String>,
    q: QueryMap,
) -> Result<Response, Problem> {
    let w = workspace(&state, &ws).await?;
    let keys = state.app.accounts().keys(Some(&ws)).await?;
    Ok(keys_page(&s, &w, &keys, None, &notice(&q)))
}

/// Answers with the page itself (not a redirect) so the key never travels in a
/// URL or lands in history; the page is `no-store`.
pub async fn create_key(
    State(state): State<AppState>,
    Path(ws): Path<String>,
    p: Posted,
) -> Result<Response, Problem> {
    let w = workspace(&state, &ws).await?;
    let Some(name) = p.form.get("name") else {
        return Ok(back(
            &format!("/dashboard/w/{ws}/keys"),
            Err(Problem::bad("Give the key a name.")),
        ));
    };
    let (_, plaintext) = state.app.accounts().create_key(&ws, name, None).await?;
    let keys = state.app.accounts().keys(Some(&ws)).await?;
    let notice = Notice {
        ok: Some(format!("Key “{name}” created.")),
        error: None,
    };
    Ok(keys_page(&p.session, &w, &keys, Some(&plaintext), &notice))
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Path((ws, key_id)): Path<(String, String)>,
    _p: Posted,
) -> Response {
    let result = async {
        // Only this workspace's keys.
        let keys = state.app.accounts().keys(Some(&ws)).await?;
        let key = keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(Problem::not_found)?;
        state.app.accounts().revoke_key(&key.id).await?;
        Ok(format!("Key {} revoked.", key.prefix))
    }
    .await;
    back(&format!("/dashboard/w/{ws}/keys"), result)
}

const USAGE_DAYS: i64 = 30;

/// Credits per day as an SVG bar chart (no script needed), then per agent and
/// per model.
pub async fn usage(
    State(state): State<AppState>,
    s: Session,
    Path(ws): Path<String>,
    q: QueryMap,
) -> Result<Response, Problem> {
    let w = workspace(&state, &ws).await?;
    let rows = state.app.credits().usage(&ws, USAGE_DAYS).await?;
    let today = state.app.now() / 86_400_000;
    let first = today - (USAGE_DAYS - 1);
    let mut per_day = vec![0f64; USAGE_DAYS as usize];
    let mut per_agent: BTreeMap<&str, (f64, i64)> = BTreeMap::new();
    let mut per_model: BTreeMap<&str, (f64, i64)> = BTreeMap::new();
    for r in &rows {
        if let Some(slot) = usize::try_from(r.day - first)
            .ok()
            .and_then(|i| per_day.get_mut(i))
        {
            *slot += r.credits;
        }
        let a = per_agent.entry(&r.agent_id).or_default();
        a.0 += r.credits;
        a.1 += r.responses;
        let m = per_model.entry(&r.model).or_default();
        m.0 += r.credits;
        m.1 += r.responses;
    }
    let total: f64 = per_day.iter().sum();
    let chart = bar_chart(&per_day, first);
    let names: BTreeMap<String, String> = state
        .app
        .agents()
        .list(&ws, None, 100)
        .await?
        .items
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    let agent_rows: Vec<Vec<String>> = per_agent
        .iter()
        .map(|(id, (credits, n))| {
            let name = names.get(*id).map_or_else(|| esc(id), |n| esc(n));
            vec![name, format!("{credits:.2}"), n.to_string()]
        })
        .collect();
    let model_rows: Vec<Vec<String>> = per_model
        .iter()
        .map(|(m, (credits, n))| {
            vec![
                format!("<code>{}</code>", esc(m)),
                format!("{credits:.2}"),
                n.to_string(),
            ]
        })
        .collect();
    let body = format!(
        "<p>Credits used in the last {USAGE_DAYS} days (UTC): <strong id=\"usage-total\">{total:.2}</strong>. \
         Plan: {} ({} credits a month).</p>\
         <figure class=\"card\"><figcaption>Credits per day</figcaption>{chart}</figure>{}{}",
        esc(w.workspace.plan.as_str()),
        state.app.settings().monthly_credits(w.workspace.plan),
        table(
            "Per agent",
            &["Agent", "Credits", "Responses"],
            &agent_rows,
            "No usage yet."
        ),
        table(
            "Per model",
            &["Model", "Credits", "Responses"],
            &model_rows,
            ""
        )
    );
    let nav = Nav {
        workspace: Some((&w.workspace.id, &w.workspace.name)),
        agent: None,
        current: "usage",
    };
    Ok(render(&s, "Usage", &nav, &notice(&q), &body))
}

/// Bars for `values` (one per day from `first_day`), each with a tooltip and an
/// accessible label; a table-like text fallback is the title of each bar.
fn bar_chart(values: &[f64], first_day: i64) -> String {
    let (w, h, pad) = (600.0, 160.0, 20.0);
    let max = values.iter().copied().fold(0.0, f64::max).max(1.0);
    let bw = (w - pad) / values.len().max(1) as f64;
    let mut bars = String::new();
    for (i, v) in values.iter().enumerate() {
        let bh = (v / max) * (h - pad);
        let day = html::when((first_day + i as i64) * 86_400_000);
        let _ = write!(
            bars,
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" data-credits=\"{v}\">\
             <title>{}: {v:.2} credits</title></rect>",
            pad + i as f64 * bw + 1.0,
            h - bh,
            (bw - 2.0).max(1.0),
            bh,
            &day[..10]
        );
    }
    format!(
        "<svg id=\"usage-chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Credits per day for the last {} days, at most {max:.2} a day\">\
         <line x1=\"{pad}\" y1=\"{h}\" x2=\"{w}\" y2=\"{h}\" class=\"axis\"/>\
         <text x=\"0\" y=\"12\" class=\"label\">{max:.0}</text>{bars}</svg>",
        values.len()
    )
}
