//! The agent's leads on the dashboard: the lead form's settings (what v1's
//! `collectCustomerInformation` sets), the newest leads in a table, and all of them
//! as CSV (the same file as the API's `leads/export`).

use agentbase_core::AgentPatch;
use agentbase_core::lead::{self, LeadForm};
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;
use serde_json::json;

use super::auth::{Form, Posted};
use super::html::{Notice, when};
use super::page::AgentPage;
use super::{Problem, back};
use crate::AppState;
use crate::routes::leads::leads_csv;

/// Rows on the page; the CSV has them all.
const PAGE_ROWS: u32 = 100;

/// `GET …/agents/{agentId}/leads`.
pub async fn leads(
    State(state): State<AppState>,
    page: AgentPage,
    notice: Notice,
) -> Result<Response, Problem> {
    let leads = (state.app.widget())
        .leads(page.ws(), &page.agent.id, None, None, 1, PAGE_ROWS)
        .await?;
    let context = leads_context(&page.agent, leads);
    page.render("Leads", "leads", &notice, "leads.html", context)
}

/// What the leads template shows: the agent's lead form and its newest leads.
fn leads_context(a: &agentbase_core::Agent, leads: Vec<lead::Lead>) -> LeadsContext {
    let form = lead::form_of(a.lead_form.as_ref()).filter(LeadForm::asks_anything);
    LeadsContext {
        form: FormContext::of(form.as_ref()),
        title_max: lead::TITLE_MAX,
        show_after_max: lead::SHOW_AFTER_MAX,
        leads: leads.into_iter().map(LeadRow::of).collect(),
    }
}

#[derive(Serialize)]
struct LeadsContext {
    form: FormContext,
    title_max: usize,
    show_after_max: u64,
    leads: Vec<LeadRow>,
}

/// A lead as the page's table shows it.
#[derive(Serialize)]
struct LeadRow {
    name: String,
    email: String,
    phone: String,
    conversation: Option<String>,
    submitted: String,
}

impl LeadRow {
    fn of(l: lead::Lead) -> Self {
        LeadRow {
            name: l.name.unwrap_or_default(),
            email: l.email.unwrap_or_default(),
            phone: l.phone.unwrap_or_default(),
            conversation: l.conversation_id,
            submitted: when(l.created_at),
        }
    }
}

/// The lead form's settings as the page shows them: a title, which fields are asked
/// for and required, and after how many answers the widget shows it (asking for
/// nothing turns it off).
#[derive(Serialize)]
struct FormContext {
    title: String,
    fields: Vec<FieldContext>,
    show_after: u64,
}

#[derive(Serialize)]
struct FieldContext {
    key: &'static str,
    label: &'static str,
    active: bool,
    required: bool,
}

impl FormContext {
    fn of(form: Option<&LeadForm>) -> Self {
        let fields = [("name", "Name"), ("email", "Email"), ("phone", "Phone")]
            .into_iter()
            .map(|(key, label)| {
                let f = form.map(|f| match key {
                    "name" => &f.name,
                    "email" => &f.email,
                    _ => &f.phone,
                });
                FieldContext {
                    key,
                    label,
                    active: f.is_some_and(|f| f.active),
                    required: f.is_some_and(|f| f.required),
                }
            })
            .collect();
        FormContext {
            title: form
                .map_or("Let us know how to contact you", |f| f.title.as_str())
                .to_owned(),
            fields,
            show_after: form.map_or(1, |f| f.show_after_answers),
        }
    }
}

/// `POST …/agents/{agentId}/lead-form`: checked like v1's `collectCustomerInformation`.
pub async fn save_form(
    State(state): State<AppState>,
    Path((ws, agent_id)): Path<(String, String)>,
    p: Posted,
) -> Response {
    let result = async {
        let (patch, on) = lead_form_patch(&p.form)?;
        state.app.agents().update(&ws, &agent_id, patch).await?;
        let now = if on { "on" } else { "off" };
        Ok(format!("The lead form is {now}."))
    }
    .await;
    let to = format!("/dashboard/w/{ws}/agents/{agent_id}/leads");
    back(&to, result)
}

/// The agent's change the form makes, and whether the lead form is on (asking
/// for nothing turns it off).
fn lead_form_patch(f: &Form) -> Result<(AgentPatch, bool), Problem> {
    let form = lead_form_of(f)?;
    let on = form.asks_anything();
    let patch = AgentPatch {
        lead_form: Some(on.then(|| form.to_json())),
        ..AgentPatch::default()
    };
    Ok((patch, on))
}

/// The lead form the page's fields describe, read as the API reads `leadForm` (so
/// both refuse the same values).
fn lead_form_of(f: &Form) -> Result<LeadForm, Problem> {
    let show_after = match f.get("showAfterAnswers") {
        None => json!(null),
        Some(v) => json!(
            v.parse::<u64>()
                .map_err(|_| Problem::bad("\"Show after\" must be a whole number."))?
        ),
    };
    let field = |key: &str| json!({"active": f.checked(key), "required": f.checked(&format!("{key}Required"))});
    let wire = json!({
        "title": f.get("title"),
        "name": field("name"),
        "email": field("email"),
        "phone": field("phone"),
        "showAfterAnswers": show_after,
    });
    LeadForm::from_json(&wire, "leadForm").map_err(|e| {
        let problems: Vec<String> = e.iter().map(|(k, v)| format!("{k} {v}")).collect();
        Problem::bad(problems.join("; "))
    })
}

/// `GET …/agents/{agentId}/leads.csv`.
pub async fn export(State(state): State<AppState>, page: AgentPage) -> Result<Response, Problem> {
    let leads = (state.app.widget())
        .export_leads(page.ws(), &page.agent.id, None, None)
        .await?;
    Ok(leads_csv(leads))
}
