//! The agent's leads on the dashboard: the lead form's settings (what v1's
//! `collectCustomerInformation` sets), the newest leads in a table, and all of them
//! as CSV (the same file as the API's `leads/export`).

use agentbase_core::AgentPatch;
use agentbase_core::lead::{self, LeadForm};
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::json;

use super::auth::{Posted, Session};
use super::html::{Nav, esc, table, url_value, when};
use super::workspaces::notice;
use super::{Problem, agent_page, back, render};
use crate::AppState;
use crate::extract::QueryMap;
use crate::routes::leads::leads_csv;

/// Rows on the page; the CSV has them all.
const PAGE_ROWS: u32 = 100;

/// `GET …/agents/{agentId}/leads`.
pub async fn leads(
    State(state): State<AppState>,
    s: Session,
    Path((ws, agent_id)): Path<(String, String)>,
    q: QueryMap,
) -> Result<Response, Problem> {
    let (w, a) = agent_page(&state, &ws, &agent_id).await?;
    let form = lead::form_of(a.lead_form.as_ref()).filter(LeadForm::asks_anything);
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
        "{}<p><a href=\"{base}/leads.csv\" data-testid=\"leads-export\">Export all as CSV</a></p>{}",
        form_card(&base, &s.csrf_token, form.as_ref()),
        table(
            "Leads",
            &["Name", "Email", "Phone", "Conversation", "Submitted"],
            &rows,
            "No leads yet. The widget asks for them once the lead form above asks for something.",
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
        &notice(&q),
        &body,
    ))
}

/// The lead form's settings: a title, which fields are asked for and required,
/// and after how many answers the widget shows it. Asking for nothing turns it off.
fn form_card(base: &str, csrf: &str, form: Option<&LeadForm>) -> String {
    let check = |on: bool| if on { "checked" } else { "" };
    let mut rows = String::new();
    for (key, label) in [("name", "Name"), ("email", "Email"), ("phone", "Phone")] {
        let f = form.map(|f| match key {
            "name" => &f.name,
            "email" => &f.email,
            _ => &f.phone,
        });
        rows.push_str(&format!(
            "<div class=\"row\"><label class=\"check\"><input type=\"checkbox\" name=\"{key}\" value=\"1\" data-testid=\"lead-ask-{key}\" {}> Ask for {label}</label>\
             <label class=\"check\"><input type=\"checkbox\" name=\"{key}Required\" value=\"1\" {}> required</label></div>",
            check(f.is_some_and(|f| f.active)),
            check(f.is_some_and(|f| f.required)),
        ));
    }
    format!(
        "<form class=\"card\" method=\"post\" action=\"{base}/lead-form\" data-testid=\"lead-form-settings\">{}\
         <h2>Lead form</h2><p>The widget asks visitors for their contact details (Chatbase's \
         \"collect customer information\"). Ask for nothing to turn it off.</p>\
         <label for=\"lead-title\">Title</label><input id=\"lead-title\" name=\"title\" maxlength=\"{}\" value=\"{}\">\
         {rows}<label for=\"lead-after\">Show after this many answers (0: before the first message)</label>\
         <input id=\"lead-after\" name=\"showAfterAnswers\" type=\"number\" min=\"0\" max=\"{}\" value=\"{}\">\
         <button type=\"submit\">Save the lead form</button></form>",
        super::html::csrf_field(csrf),
        lead::TITLE_MAX,
        esc(form.map_or("Let us know how to contact you", |f| f.title.as_str())),
        lead::SHOW_AFTER_MAX,
        form.map_or(1, |f| f.show_after_answers),
    )
}

/// `POST …/agents/{agentId}/lead-form`: checked like v1's `collectCustomerInformation`.
pub async fn save_form(
    State(state): State<AppState>,
    Path((ws, agent_id)): Path<(String, String)>,
    p: Posted,
) -> Response {
    let f = &p.form;
    let result = async {
        let show_after = match f.get("showAfterAnswers") {
            None => json!(null),
            Some(v) => json!(v.parse::<u64>().map_err(|_| Problem::bad(
                "\"Show after\" must be a whole number."
            ))?),
        };
        let field = |key: &str| {
            json!({"active": f.checked(key), "required": f.checked(&format!("{key}Required"))})
        };
        let wire = json!({
            "title": f.get("title"),
            "name": field("name"),
            "email": field("email"),
            "phone": field("phone"),
            "showAfterAnswers": show_after,
        });
        let form = LeadForm::from_json(&wire, "leadForm").map_err(|e| {
            Problem::bad(
                e.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let on = form.asks_anything();
        let patch = AgentPatch {
            lead_form: Some(on.then(|| form.to_json())),
            ..AgentPatch::default()
        };
        state.app.update_agent(&ws, &agent_id, patch).await?;
        Ok(if on {
            "The lead form is on.".to_owned()
        } else {
            "The lead form is off.".to_owned()
        })
    }
    .await;
    back(
        &format!("/dashboard/w/{ws}/agents/{agent_id}/leads"),
        result,
    )
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
