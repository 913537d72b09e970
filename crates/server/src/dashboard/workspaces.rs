//! Workspaces and plans, API keys (shown once at creation), and usage.

use std::collections::BTreeMap;

use agentbase_core::Plan;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::{Posted, Session};
use super::html::{self, Nav, Notice, when};
use super::{Problem, back, redirect, render_template, workspace};
use crate::AppState;
use crate::extract::QueryMap;

pub fn notice(q: &QueryMap) -> Notice {
    Notice {
        ok: q.get("ok").map(str::to_owned),
        error: q.get("error").map(str::to_owned),
    }
}

pub async fn list(
    State(state): State<AppState>,
    s: Session,
    q: QueryMap,
) -> Result<Response, Problem> {
    // A member sees the workspaces they belong to, with their role and without
    // the administrator's forms (plans, new workspaces).
    let workspaces: Vec<_> = match &s.member {
        Some(m) => (state.app.members().member_workspaces(&m.id).await?.iter())
            .map(|(w, role)| json!({"id": w.id, "name": w.name, "role": role.as_str()}))
            .collect(),
        None => (state.app.accounts().workspaces().await?.iter())
            .map(|w| {
                json!({"id": w.id, "name": w.name, "plan": w.plan.as_str(), "created": when(w.created_at)})
            })
            .collect(),
    };
    let plans: Vec<[&str; 2]> = Plan::ALL.iter().map(|p| [p.as_str(); 2]).collect();
    let page = json!({"member": s.member.is_some(), "workspaces": workspaces, "plans": plans});
    render_template(
        &s,
        "Workspaces",
        &Nav::TOP,
        &notice(&q),
        "workspaces.html",
        page,
    )
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
) -> Result<Response, Problem> {
    let keys: Vec<_> = keys
        .iter()
        .map(|k| {
            json!({
                "id": k.id,
                "name": k.name,
                "prefix": k.prefix,
                "created": when(k.created_at),
                "last_used": k.last_used_at.map_or_else(|| "never".into(), when),
                "revoked": k.revoked_at.is_some(),
            })
        })
        .collect();
    let page = json!({"ws": w.workspace.id, "created": created, "keys": keys});
    let nav = workspace_nav(w, "keys");
    render_template(s, "API keys", &nav, notice, "keys.html", page)
}

/// The navigation of a workspace's own pages.
fn workspace_nav<'a>(w: &'a super::Ws, current: &'a str) -> Nav<'a> {
    Nav {
        workspace: Some((&w.workspace.id, &w.workspace.name)),
        agent: None,
        current,
    }
}

pub async fn keys(
    State(state): State<AppState>,
    s: Session,
    Path(ws): Path<String>,
    q: QueryMap,
) -> Result<Response, Problem> {
    let w = workspace(&state, &ws).await?;
    let keys = state.app.accounts().keys(Some(&ws)).await?;
    keys_page(&s, &w, &keys, None, &notice(&q))
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
    keys_page(&p.session, &w, &keys, Some(&plaintext), &notice)
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
    let first = state.app.now() / 86_400_000 - (USAGE_DAYS - 1);
    let tally = Tally::of(&rows, first);
    let total: f64 = tally.per_day.iter().sum();
    let names = agent_names(&state, &ws).await?;
    let name = |id| names.get(id).map_or(id, String::as_str);
    let agents = credit_rows(&tally.per_agent, "name", name);
    let models = credit_rows(&tally.per_model, "model", |m| m);
    let page = json!({
        "days": USAGE_DAYS,
        "total": format!("{total:.2}"),
        "plan": w.workspace.plan.as_str(),
        "monthly": state.app.settings().monthly_credits(w.workspace.plan),
        "chart": bar_chart(&tally.per_day, first),
        "agents": agents,
        "models": models,
    });
    let nav = workspace_nav(&w, "usage");
    render_template(&s, "Usage", &nav, &notice(&q), "usage.html", page)
}

/// The workspace's agents' names by id (the first 100).
async fn agent_names(state: &AppState, ws: &str) -> Result<BTreeMap<String, String>, Problem> {
    let agents = state.app.agents().list(ws, None, 100).await?;
    Ok(agents.items.into_iter().map(|a| (a.id, a.name)).collect())
}

/// One row per key of a tally: `label` (what `name` calls the key), credits, responses.
fn credit_rows<'a>(
    tally: &BTreeMap<&'a str, (f64, i64)>,
    label: &str,
    name: impl Fn(&'a str) -> &'a str,
) -> Vec<Value> {
    let row = |(key, (credits, n)): (&&'a str, &(f64, i64))| json!({label: name(key), "credits": format!("{credits:.2}"), "responses": n});
    tally.iter().map(row).collect()
}

/// Credits (and responses) per day, per agent and per model.
struct Tally<'a> {
    per_day: Vec<f64>,
    per_agent: BTreeMap<&'a str, (f64, i64)>,
    per_model: BTreeMap<&'a str, (f64, i64)>,
}

impl<'a> Tally<'a> {
    /// `rows` of the last `USAGE_DAYS` days, the first of which is `first_day`.
    fn of(rows: &'a [agentbase_service::UsageRow], first_day: i64) -> Self {
        let mut t = Tally {
            per_day: vec![0.0; USAGE_DAYS as usize],
            per_agent: BTreeMap::new(),
            per_model: BTreeMap::new(),
        };
        for r in rows {
            if let Some(slot) = usize::try_from(r.day - first_day)
                .ok()
                .and_then(|i| t.per_day.get_mut(i))
            {
                *slot += r.credits;
            }
            for (map, key) in [
                (&mut t.per_agent, &r.agent_id),
                (&mut t.per_model, &r.model),
            ] {
                let e = map.entry(key).or_default();
                e.0 += r.credits;
                e.1 += r.responses;
            }
        }
        t
    }
}

/// Bars for `values` (one per day from `first_day`), each with a tooltip (its day
/// and figure), for the template's SVG chart (no script needed).
fn bar_chart(values: &[f64], first_day: i64) -> serde_json::Value {
    let (w, h, pad) = (600.0, 160.0, 20.0);
    let max = values.iter().copied().fold(0.0, f64::max).max(1.0);
    let bw = (w - pad) / values.len().max(1) as f64;
    let bars: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let bh = (v / max) * (h - pad);
            let day = html::when((first_day + i as i64) * 86_400_000);
            json!({
                "x": format!("{:.1}", pad + i as f64 * bw + 1.0),
                "y": format!("{:.1}", h - bh),
                "width": format!("{:.1}", (bw - 2.0).max(1.0)),
                "height": format!("{bh:.1}"),
                "credits": v.to_string(),
                "label": format!("{v:.2}"),
                "day": &day[..10],
            })
        })
        .collect();
    json!({
        "width": w.to_string(),
        "height": h.to_string(),
        "pad": pad.to_string(),
        "max": format!("{max:.2}"),
        "max_label": format!("{max:.0}"),
        "bars": bars,
    })
}
