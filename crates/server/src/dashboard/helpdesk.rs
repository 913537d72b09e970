//! The dashboard's helpdesk: an agent's tickets (filtered by status, team and
//! assignee), and on a conversation's page the handoff controls (take over, reply,
//! hand back) with its live feed (`live.json`, a long poll the page's script
//! repeats, so the visitor's messages appear without a reload).

use agentbase_core::helpdesk::{self, CATEGORIES, Sender, Team, Ticket, TicketFilter};
use agentbase_service::helpdesk::TicketsPage;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::auth::Session;
use super::html::{Notice, url_value, when};
use super::page::{AgentPage, WsPage, WsPosted};
use super::{Problem, back};
use crate::AppState;
use crate::dto::widget::LiveFeed;
use crate::error::ApiError;
use crate::extract::QueryMap;
use crate::widget_live::LiveQuery;

/// Rows on the tickets page.
const PAGE_ROWS: u32 = 100;

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
    page: AgentPage,
    q: TicketsQuery,
    notice: Notice,
) -> Result<Response, Problem> {
    let (filter, email) = (q.filter(), q.assignee_email());
    let found = (state.app.helpdesk())
        .tickets_page(page.ws(), &page.agent.id, &filter, email, PAGE_ROWS)
        .await?;
    let context = TicketsContext::of(&q, found);
    page.render("Tickets", "tickets", &notice, "tickets.html", context)
}

/// The tickets page's query: `status`, `team` and `assignee`, as given.
pub struct TicketsQuery {
    status: String,
    team: String,
    assignee: String,
}

impl<S: Send + Sync> FromRequestParts<S> for TicketsQuery {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let q = QueryMap::from_request_parts(parts, state).await?;
        let shown = |k| q.get(k).unwrap_or("").to_owned();
        Ok(TicketsQuery {
            status: shown("status"),
            team: shown("team"),
            assignee: shown("assignee"),
        })
    }
}

impl TicketsQuery {
    fn filter(&self) -> TicketFilter {
        ticket_filter(&self.status, &self.team, &self.assignee)
    }

    /// An assignee given by email, matched among the rows (the filter matches ids).
    fn assignee_email(&self) -> Option<&str> {
        Some(self.assignee.as_str()).filter(|a| a.contains('@'))
    }
}

/// What the tickets template shows.
#[derive(Serialize)]
struct TicketsContext<'a> {
    filter: TicketsFilterShown<'a>,
    statuses: Vec<(&'static str, &'static str)>,
    teams: Vec<(String, String)>,
    tickets: Vec<TicketRow>,
}

/// The filter as the page's form shows it.
#[derive(Serialize)]
struct TicketsFilterShown<'a> {
    status: &'a str,
    team: &'a str,
    assignee: &'a str,
}

impl<'a> TicketsContext<'a> {
    fn of(q: &'a TicketsQuery, found: TicketsPage) -> Self {
        let teams = &found.teams;
        TicketsContext {
            filter: TicketsFilterShown {
                status: &q.status,
                team: &q.team,
                assignee: &q.assignee,
            },
            statuses: status_choices(),
            teams: (team_choices(teams).into_iter())
                .map(|(v, l)| (v.to_owned(), l.to_owned()))
                .collect(),
            tickets: (found.tickets.into_iter())
                .map(|t| TicketRow::of(t, teams))
                .collect(),
        }
    }
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
    Path((ws, agent_id, id)): Path<(String, String, String)>,
    WsPosted { w, .. }: WsPosted,
) -> Response {
    let result = async {
        let w = w?;
        let taken = (state.app.helpdesk()).take_over_conversation(&w.principal, &agent_id, &id);
        let n = taken.await?.number;
        Ok(format!(
            "Taken over as ticket #{n}. The AI is silent until you hand it back."
        ))
    }
    .await;
    back(&thread_url(&ws, &agent_id, &id), result)
}

pub async fn reply(
    State(state): State<AppState>,
    Path((ws, agent_id, id)): Path<(String, String, String)>,
    WsPosted { w, form, session }: WsPosted,
) -> Response {
    let (text, by) = (form.raw("text"), operator(&session));
    let result = async {
        let w = w?;
        if text.trim().is_empty() {
            return Err(Problem::bad("Write a reply first."));
        }
        let helpdesk = state.app.helpdesk();
        (helpdesk.reply_to_conversation(&w.principal, &agent_id, &id, text, by)).await?;
        Ok("Reply sent.".to_owned())
    }
    .await;
    back(&thread_url(&ws, &agent_id, &id), result)
}

pub async fn hand_back(
    State(state): State<AppState>,
    Path((ws, agent_id, id)): Path<(String, String, String)>,
    WsPosted { w, .. }: WsPosted,
) -> Response {
    let result = async {
        (state.app.helpdesk())
            .hand_back(&w?.principal, &agent_id, &id)
            .await?;
        Ok("Handed back: the AI answers again.".to_owned())
    }
    .await;
    back(&thread_url(&ws, &agent_id, &id), result)
}

/// `GET …/conversations/{id}/live.json?after=N&wait=S`: the messages past N and
/// the status, as soon as there are any (at most `wait` seconds).
pub async fn live(
    State(state): State<AppState>,
    page: WsPage,
    Path((_, agent_id, conversation_id)): Path<(String, String, String)>,
    q: Result<LiveQuery, ApiError>,
) -> Result<Response, Problem> {
    let LiveQuery { after, wait } = q?;
    let (messages, status) = (state.app.helpdesk())
        .operator_messages_after(&page.w.principal, &agent_id, &conversation_id, after, wait)
        .await?;
    Ok(axum::Json(LiveFeed::of(&messages, status)).into_response())
}
