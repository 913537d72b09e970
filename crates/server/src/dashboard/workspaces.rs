//! Workspaces and plans, API keys (shown once at creation), and usage.

use std::collections::BTreeMap;

use agentbase_core::member::Role;
use agentbase_core::{Plan, Workspace};
use agentbase_service::credits::UsagePage;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;

use super::auth::{Posted, Session};
use super::html::{self, Nav, Notice, when};
use super::page::{WsPage, WsPosted};
use super::{Problem, back, redirect, render_template};
use crate::AppState;

pub async fn list(
    State(state): State<AppState>,
    s: Session,
    notice: Notice,
) -> Result<Response, Problem> {
    let member = s.member.as_ref().map(|m| m.id.as_str());
    let workspaces = state.app.members().workspaces_of(member).await?;
    let page = WorkspacesContext {
        member: s.member.is_some(),
        plans: Plan::ALL.iter().map(|p| [p.as_str(); 2]).collect(),
        workspaces: workspaces.iter().map(WorkspaceRow::of).collect(),
    };
    let template = "workspaces.html";
    render_template(&s, "Workspaces", &Nav::TOP, &notice, template, page)
}

/// What the workspaces template shows.
#[derive(Serialize)]
struct WorkspacesContext<'a> {
    member: bool,
    plans: Vec<[&'static str; 2]>,
    workspaces: Vec<WorkspaceRow<'a>>,
}

/// A workspace in the list: a member sees their role in it; the administrator,
/// its plan and when it was made.
#[derive(Serialize)]
struct WorkspaceRow<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    id: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
}

impl<'a> WorkspaceRow<'a> {
    fn of((w, role): &'a (Workspace, Option<Role>)) -> Self {
        let admin = role.is_none();
        WorkspaceRow {
            created: admin.then(|| when(w.created_at)),
            id: &w.id,
            name: &w.name,
            plan: admin.then(|| w.plan.as_str()),
            role: role.map(|r| r.as_str()),
        }
    }
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
    let page = KeysContext {
        ws: &w.workspace.id,
        created,
        keys: keys.iter().map(KeyRow::of).collect(),
    };
    let nav = workspace_nav(w, "keys");
    render_template(s, "API keys", &nav, notice, "keys.html", page)
}

/// What the keys template shows: `created`, a new key's plaintext, shown once.
#[derive(Serialize)]
struct KeysContext<'a> {
    ws: &'a str,
    created: Option<&'a str>,
    keys: Vec<KeyRow<'a>>,
}

#[derive(Serialize)]
struct KeyRow<'a> {
    id: &'a str,
    name: &'a str,
    prefix: &'a str,
    created: String,
    last_used: String,
    revoked: bool,
}

impl<'a> KeyRow<'a> {
    fn of(k: &'a agentbase_core::ApiKey) -> Self {
        KeyRow {
            id: &k.id,
            name: &k.name,
            prefix: &k.prefix,
            created: when(k.created_at),
            last_used: k.last_used_at.map_or_else(|| "never".into(), when),
            revoked: k.revoked_at.is_some(),
        }
    }
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
    page: WsPage,
    notice: Notice,
) -> Result<Response, Problem> {
    let keys = state.app.accounts().keys(Some(page.ws())).await?;
    keys_page(&page.session, &page.w, &keys, None, &notice)
}

/// Answers with the page itself (not a redirect) so the key never travels in a
/// URL or lands in history; the page is `no-store`.
pub async fn create_key(
    State(state): State<AppState>,
    Path(ws): Path<String>,
    WsPosted { w, form, session }: WsPosted,
) -> Result<Response, Problem> {
    let w = w?;
    let Some(name) = form.get("name") else {
        let unnamed = Err(Problem::bad("Give the key a name."));
        return Ok(back(&format!("/dashboard/w/{ws}/keys"), unnamed));
    };
    let created = state.app.accounts().create_key_and_list(&ws, name).await;
    let (plaintext, keys) = created?;
    let notice = Notice::ok(format!("Key “{name}” created."));
    keys_page(&session, &w, &keys, Some(&plaintext), &notice)
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Path((ws, key_id)): Path<(String, String)>,
    _p: Posted,
) -> Response {
    let result = async {
        // Only this workspace's keys.
        let revoked = state.app.accounts().revoke_workspace_key(&ws, &key_id);
        let key = revoked.await?.ok_or_else(Problem::not_found)?;
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
    page: WsPage,
    notice: Notice,
) -> Result<Response, Problem> {
    let usage = (state.app.credits())
        .usage_page(&page.w.workspace, USAGE_DAYS)
        .await?;
    let context = usage_context(&page.w.workspace, &usage);
    page.render("Usage", "usage", &notice, "usage.html", context)
}

/// What the usage template shows.
fn usage_context<'a>(w: &Workspace, u: &'a UsagePage) -> UsageContext<'a> {
    let tally = Tally::of(&u.rows, u.first_day);
    let total: f64 = tally.per_day.iter().sum();
    let name = |id| u.agent_names.get(id).map_or(id, String::as_str);
    UsageContext {
        days: USAGE_DAYS,
        total: format!("{total:.2}"),
        plan: w.plan.as_str(),
        monthly: u.monthly,
        chart: bar_chart(&tally.per_day, u.first_day),
        agents: credit_rows(&tally.per_agent, |key| CreditRow::named(name(key))),
        models: credit_rows(&tally.per_model, CreditRow::model),
    }
}

/// The usage page's figures, formatted.
#[derive(Serialize)]
struct UsageContext<'a> {
    days: i64,
    total: String,
    plan: &'static str,
    monthly: u64,
    chart: Chart,
    agents: Vec<CreditRow<'a>>,
    models: Vec<CreditRow<'a>>,
}

/// Credits and responses of an agent (by `name`) or of a `model`.
#[derive(Serialize)]
struct CreditRow<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    credits: String,
    responses: i64,
}

impl<'a> CreditRow<'a> {
    fn named(name: &'a str) -> Self {
        CreditRow {
            name: Some(name),
            model: None,
            credits: String::new(),
            responses: 0,
        }
    }

    fn model(model: &'a str) -> Self {
        CreditRow {
            name: None,
            model: Some(model),
            credits: String::new(),
            responses: 0,
        }
    }
}

/// One row per key of a tally (`row` names it), with its credits and responses.
fn credit_rows<'a>(
    tally: &BTreeMap<&'a str, (f64, i64)>,
    row: impl Fn(&'a str) -> CreditRow<'a>,
) -> Vec<CreditRow<'a>> {
    let row = |(key, (credits, n)): (&&'a str, &(f64, i64))| CreditRow {
        credits: format!("{credits:.2}"),
        responses: *n,
        ..row(key)
    };
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

/// The SVG chart's size, scale and bars.
#[derive(Serialize)]
struct Chart {
    width: String,
    height: String,
    pad: String,
    max: String,
    max_label: String,
    bars: Vec<Bar>,
}

/// A day's bar, with its tooltip (its day and figure).
#[derive(Serialize)]
struct Bar {
    x: String,
    y: String,
    width: String,
    height: String,
    credits: String,
    label: String,
    day: String,
}

/// Bars for `values` (one per day from `first_day`), each with a tooltip (its day
/// and figure), for the template's SVG chart (no script needed).
fn bar_chart(values: &[f64], first_day: i64) -> Chart {
    let (w, h, pad) = (600.0, 160.0, 20.0);
    let max = values.iter().copied().fold(0.0, f64::max).max(1.0);
    let bw = (w - pad) / values.len().max(1) as f64;
    let bars: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let bh = (v / max) * (h - pad);
            let day = html::when((first_day + i as i64) * 86_400_000);
            Bar {
                x: format!("{:.1}", pad + i as f64 * bw + 1.0),
                y: format!("{:.1}", h - bh),
                width: format!("{:.1}", (bw - 2.0).max(1.0)),
                height: format!("{bh:.1}"),
                credits: v.to_string(),
                label: format!("{v:.2}"),
                day: day[..10].to_owned(),
            }
        })
        .collect();
    Chart {
        width: w.to_string(),
        height: h.to_string(),
        pad: pad.to_string(),
        max: format!("{max:.2}"),
        max_label: format!("{max:.0}"),
        bars,
    }
}
