//! The agent's leads on the dashboard: the newest ones in a table, and all of them as
//! CSV (the same file as the API's `leads/export`).

use axum::extract::{Path, State};
use axum::response::Response;

use super::auth::Session;
use super::html::{Nav, Notice, esc, table, url_value, when};
use super::{Problem, agent_page, render};
use crate::AppState;
use crate::routes::leads::leads_csv;

/// Rows on the page; the CSV has them all.
const PAGE_ROWS: u32 = 100;

/// `GET …/agents/{agentId}/leads`.
pub async fn leads(
    State(state): State<AppState>,
    s: Session,
    Path((ws, agent_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let (w, a) = agent_page(&state, &ws, &agent_id).await?;
    let leads = state
        .app
        .leads(&ws, &a.id, None, None, 1, PAGE_ROWS)
        .await?;
    let base = format!(
        "/dashboard/w/{}/agents/{}",
        url_value(&ws),
        url_value(&a.id)
    );
    let rows: Vec<Vec<String>> = leads
        .iter()
        .map(|l| {
            let conversation = l.conversation_id.as_deref().map_or_else(
                || "—".to_owned(),
                |c| format!("<a href=\"{base}/conversations/{}\">open</a>", url_value(c)),
            );
            vec![
                esc(l.name.as_deref().unwrap_or("")),
                format!(
                    "<span data-testid=\"lead-email\">{}</span>",
                    esc(l.email.as_deref().unwrap_or(""))
                ),
                esc(l.phone.as_deref().unwrap_or("")),
                conversation,
                when(l.created_at),
            ]
        })
        .collect();
    let body = format!(
        "<p><a href=\"{base}/leads.csv\" data-testid=\"leads-export\">Export all as CSV</a></p>{}",
        table(
            "Leads",
            &["Name", "Email", "Phone", "Conversation", "Submitted"],
            &rows,
            "No leads yet. Turn on the lead form in the agent's settings.",
        )
    );
    Ok(render(
        &s,
        "Leads",
        &Nav {
            workspace: Some((&w.workspace.id, &w.workspace.name)),
            agent: Some((&a.id, &a.name)),
            current: "leads",
        },
        &Notice::default(),
        &body,
    ))
}

/// `GET …/agents/{agentId}/leads.csv`.
pub async fn export(
    State(state): State<AppState>,
    _s: Session,
    Path((ws, agent_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let (_, a) = agent_page(&state, &ws, &agent_id).await?;
    Ok(leads_csv(
        state.app.export_leads(&ws, &a.id, None, None).await?,
    ))
}
