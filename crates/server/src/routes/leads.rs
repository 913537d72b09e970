//! `GET /api/v2/agents/{agentId}/leads/export`: the agent's leads as CSV (an
//! agentbase extension beside v1's `get-leads`). Cells a spreadsheet would run as
//! formulas are neutralised as the dataset export does.

use agentbase_core::lead::Lead;
use agentbase_core::time_fmt::iso8601;
use agentbase_service::Principal;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::DateWindow;
use crate::routes::dataset_items::{csv_field, spreadsheet_safe};

const COLUMNS: [&str; 6] = [
    "id",
    "name",
    "email",
    "phone",
    "conversationId",
    "createdAt",
];

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/leads/export", tag = "leads",
    params(("agentId" = String, Path),
           ("startDate" = Option<String>, Query, description = "YYYY-MM-DD, included"),
           ("endDate" = Option<String>, Query, description = "YYYY-MM-DD, included")),
    responses((status = 200, description = "CSV with a header row", content_type = "text/csv"),
              (status = 400, body = agentbase_api_types::ErrorResponse),
              (status = 404, body = agentbase_api_types::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    DateWindow { from, to }: DateWindow,
) -> Result<Response, ApiError> {
    let leads = state
        .app
        .widget()
        .export_leads(&p.workspace_id, &agent_id, from, to)
        .await?;
    Ok(leads_csv(leads))
}

/// Leads as a CSV attachment (the API's export and the dashboard's).
pub(crate) fn leads_csv(leads: Vec<Lead>) -> Response {
    let mut csv = COLUMNS.join(",");
    csv.push_str("\r\n");
    for l in leads {
        let cells = [
            l.id,
            l.name.unwrap_or_default(),
            l.email.unwrap_or_default(),
            l.phone.unwrap_or_default(),
            l.conversation_id.unwrap_or_default(),
            iso8601(l.created_at),
        ];
        let row: Vec<String> = cells
            .iter()
            .map(|c| csv_field(&spreadsheet_safe(c)))
            .collect();
        csv.push_str(&row.join(","));
        csv.push_str("\r\n");
    }
    let mut r = csv.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"leads.csv\""),
    );
    r
}
