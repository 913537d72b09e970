//! The dashboard's helpdesk: an agent's tickets (filtered by status, team and
//! assignee), and on a conversation's page the handoff controls (take over, reply,
//! hand back) with its live feed (`live.json`, a long poll the page's script
//! repeats, so the visitor's messages appear without a reload).

use agentbase_core::helpdesk::{self, CATEGORIES, Sender, Team, Ticket, TicketFilter};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::auth::{Posted, Session};
use super::html::{url_value, when};
use super::workspaces::notice;
use super::{Problem, agent_page, back, nav, render_template, workspace};
use crate::AppState;
use crate::extract::QueryMap;
use crate::widget_live::{live_json, live_params};

/// Who replies from the dashboard: the signed-in member, or the instance
/// administrator (no member record) as "Operator".
fn operator(session: &Session) -> Sender {
    match &session.member {
        Some(m) => Sender::agent(
            Some(m.id.clone()),
            Some(m.email.clone()),
            Some(m.name.clone()),
        ),
        None => Sender::agent(None, None, Some("Operator".into())),
    }
}

/// `GET …/agents/{agentId}/tickets?status=&team=&assignee=`.
pub async fn tickets(
    State(state): State<AppState>,
    s: Session,
    Path((ws, agent_id)): Path<(String, String)>,
    q: QueryMap,
) -> Result<Response, Problem> {
    let (w, a) = agent_page(&state, &ws, &agent_id).await?;
    let teams = state.app.helpdesk().helpdesk_teams(&ws, &a.id).await?;
    let status = q.get("status").unwrap_or("");
    let team = q.get("team").unwrap_or("");
    let assignee = q.get("assignee").unwrap_or("");
    let filter = ticket_filter(status, team, assignee);
    let page = state
        .app
        .helpdesk()
        .tickets(&ws, &a.id, &filter, None, 100)
        .await?;
    // The assignee is matched by id in the filter or, for emails, among the rows.
    let tickets: Vec<TicketRow> = (page.items.into_iter())
        .filter(|t| {
            !assignee.contains('@')
                || (t.assignee_email.as_deref()).is_some_and(|e| e.eq_ignore_ascii_case(assignee))
        })
        .map(|t| TicketRow::of(t, &teams))
        .collect();
    let page = json!({
        "filter": { "status": status, "team": team, "assignee": assignee },
        "statuses": status_choices(),
        "teams": team_choices(&teams),
        "tickets": tickets,
    });
    let nav = nav(&w, Some(&a), "tickets");
    render_template(&s, "Tickets", &nav, &notice(&q), "tickets.html", page)
}

/// The filter's status choices (value, label): any, or one category.
fn status_choices() -> Vec<(&'static str, &'static str)> {
    std::iter::once(("", "any status"))
        .chain(CATEGORIES.iter().map(|c| (*c, *c)))
        .collect()
}

/// The filter's team choices (value, label): any, none, or one of the teams.
fn team_choices(teams: &[Team]) -> Vec<(&str, &str)> {
    let mut choices = vec![("", "any team"), ("none", "no team")];
    choices.extend(teams.iter().map(|t| (t.id.as_str(), t.name.as_str())));
    choices
}

/// The page's filter: a status category, a team (`none`: no team) and an assignee
/// (`none`: unassigned; a member id; an email is matched among the rows instead).
fn ticket_filter(status: &str, team: &str, assignee: &str) -> TicketFilter {
    let mut f = TicketFilter::default();
    if CATEGORIES.contains(&status) {
        f.statuses = vec![status.to_owned()];
    }
    f.team_id = match team {
        "" => None,
        "none" => Some(None),
        t => Some(Some(t.to_owned())),
    };
    f.assignee_id = match assignee {
        "none" => Some(None),
        a if helpdesk::is_uuid(a) => Some(Some(a.to_owned())),
        _ => None,
    };
    f
}

/// One row of the tickets table.
#[derive(Serialize)]
struct TicketRow {
    number: i64,
    subject: String,
    conversation: Option<String>,
    status: String,
    team: String,
    assignee: String,
    priority: String,
    channel: String,
    updated: String,
}

impl TicketRow {
    fn of(t: Ticket, teams: &[Team]) -> Self {
        let team = (t.team_id.as_ref())
            .and_then(|id| teams.iter().find(|x| &x.id == id))
            .map_or("—".to_owned(), |x| x.name.clone());
        TicketRow {
            number: t.number,
            subject: t.subject.unwrap_or_else(|| "(no subject)".into()),
            team,
            assignee: (t.assignee_email.or(t.assignee_id)).unwrap_or_else(|| "unassigned".into()),
            conversation: t.conversation_id,
            status: t.status_category,
            priority: t.priority,
            channel: t.channel,
            updated: when(t.updated_at),
        }
    }
}

fn thread_url(ws: &str, agent_id: &str, conversation_id: &str) -> String {
    format!(
        "/dashboard/w/{ws}/agents/{agent_id}/conversations/{}",
        url_value(conversation_id)
    )
}

pub async fn take_over(
    State(state): State<AppState>,
    Path((ws, agent_id, conversation_id)): Path<(String, String, String)>,
    _p: Posted,
) -> Response {
    let result = async {
        let w = workspace(&state, &ws).await?;
        let t = state
            .app
            .helpdesk()
            .take_over_conversation(&w.principal, &agent_id, &conversation_id)
            .await?;
        Ok(format!(
            "Taken over as ticket #{}. The AI is silent until you hand it back.",
            t.number
        ))
    }
    .await;
    back(&thread_url(&ws, &agent_id, &conversation_id), result)
}

pub async fn reply(
    State(state): State<AppState>,
    Path((ws, agent_id, conversation_id)): Path<(String, String, String)>,
    p: Posted,
) -> Response {
    let text = p.form.raw("text").to_owned();
    let result = async {
        let w = workspace(&state, &ws).await?;
        if text.trim().is_empty() {
            return Err(Problem::bad("Write a reply first."));
        }
        state
            .app
            .helpdesk()
            .reply_to_conversation(
                &w.principal,
                &agent_id,
                &conversation_id,
                &text,
                operator(&p.session),
            )
            .await?;
        Ok("Reply sent.".to_owned())
    }
    .await;
    back(&thread_url(&ws, &agent_id, &conversation_id), result)
}

pub async fn hand_back(
    State(state): State<AppState>,
    Path((ws, agent_id, conversation_id)): Path<(String, String, String)>,
    _p: Posted,
) -> Response {
    let result = async {
        let w = workspace(&state, &ws).await?;
        state
            .app
            .helpdesk()
            .hand_back(&w.principal, &agent_id, &conversation_id)
            .await?;
        Ok("Handed back: the AI answers again.".to_owned())
    }
    .await;
    back(&thread_url(&ws, &agent_id, &conversation_id), result)
}

/// `GET …/conversations/{id}/live.json?after=N&wait=S`: the messages past N and
/// the status, as soon as there are any (at most `wait` seconds).
pub async fn live(
    State(state): State<AppState>,
    _s: Session,
    Path((ws, agent_id, conversation_id)): Path<(String, String, String)>,
    q: QueryMap,
) -> Result<Response, Problem> {
    let w = workspace(&state, &ws).await?;
    let (after, wait) = live_params(&q)?;
    let (messages, status) = state
        .app
        .helpdesk()
        .operator_messages_after(&w.principal, &agent_id, &conversation_id, after, wait)
        .await?;
    Ok(axum::Json(json!({
        "status": status.as_str(),
        "messages": messages.iter().map(live_json).collect::<Vec<_>>(),
    }))
    .into_response())
}
