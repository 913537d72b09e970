//! Who may open which dashboard route: the one access check, run by the
//! `Session` extractor before any handler sees the request, so every page and
//! form under `/dashboard/w/{ws}/…` (and any added later) is covered without a
//! call in each handler. The instance administrator passes everything; a member
//! passes only routes of workspaces they belong to (another workspace is a 404,
//! as if it did not exist) and only with the role the route needs (else 403).
//! Agent, source, key and conversation ids in the path are then looked up inside
//! that workspace by the handlers, so another workspace's are not found.

use std::collections::HashMap;

use agentbase_core::member::Role;
use axum::extract::{FromRequestParts, MatchedPath, Path};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};

use super::Problem;
use super::auth::Session;
use crate::AppState;

/// What a route needs beyond a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any signed-in operator (the route names no workspace).
    Session,
    /// The instance administrator only.
    Administrator,
    /// A member of the workspace of the path with at least this role.
    Role(Role),
}

const WORKSPACE_ROUTES: &str = "/dashboard/w/{ws}";

/// The policy, route by route (ARCHITECTURE.md "Workspace members" says the
/// same in words). Routes not named here need `Role::Member` under
/// `/dashboard/w/{ws}` and a session elsewhere.
pub fn need(method: &Method, route: &str) -> Need {
    let post = method == Method::POST;
    let Some(rest) = route.strip_prefix(WORKSPACE_ROUTES) else {
        return if post && route == "/dashboard/workspaces" {
            Need::Administrator
        } else {
            Need::Session
        };
    };
    match rest {
        // Plans are the instance's business (what a workspace may spend).
        "/plan" => Need::Administrator,
        // API keys reach everything in the workspace.
        r if r.starts_with("/keys") => Need::Role(Role::Admin),
        // Anyone in the workspace sees who else is; changes need an admin (and
        // an owner for owners: `core::member::may_manage`).
        r if r.starts_with("/members") && post => Need::Role(Role::Admin),
        "/agents/{agentId}/delete" => Need::Role(Role::Admin),
        _ => Need::Role(Role::Member),
    }
}

/// Checks the session against the route of `parts`, and records the member's
/// role in the workspace of the path.
pub async fn check(parts: &mut Parts, state: &AppState, s: &mut Session) -> Result<(), Problem> {
    let Some(route) = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
    else {
        // Not reached through a dashboard route (a fallback): nothing to open.
        return Ok(());
    };
    let need = need(&parts.method, &route);
    let Some(member) = s.member.as_mut() else {
        // The administrator sees and does everything, as before members existed.
        return Ok(());
    };
    match need {
        Need::Session => Ok(()),
        Need::Administrator => Err(Problem::new(
            StatusCode::FORBIDDEN,
            "Only the instance administrator can do this.",
        )),
        Need::Role(needed) => {
            let params = Path::<HashMap<String, String>>::from_request_parts(parts, state)
                .await
                .map_err(|_| Problem::not_found())?;
            let ws = params.get("ws").ok_or_else(Problem::not_found)?;
            let role = state
                .app
                .members()
                .member_role(ws, &member.id)
                .await?
                .ok_or_else(Problem::not_found)?;
            member.role = Some(role);
            if role.at_least(needed) {
                Ok(())
            } else {
                Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    format!("This needs the {needed} role in this workspace; yours is {role}."),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_what_each_route_needs() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(need(&get, "/dashboard/workspaces"), Need::Session);
        assert_eq!(need(&post, "/dashboard/workspaces"), Need::Administrator);
        assert_eq!(need(&post, "/dashboard/w/{ws}/plan"), Need::Administrator);
        assert_eq!(
            need(&get, "/dashboard/w/{ws}/keys"),
            Need::Role(Role::Admin)
        );
        assert_eq!(
            need(&post, "/dashboard/w/{ws}/keys/{keyId}/revoke"),
            Need::Role(Role::Admin)
        );
        assert_eq!(
            need(&get, "/dashboard/w/{ws}/members"),
            Need::Role(Role::Member)
        );
        assert_eq!(
            need(&post, "/dashboard/w/{ws}/members"),
            Need::Role(Role::Admin)
        );
        assert_eq!(
            need(&post, "/dashboard/w/{ws}/agents/{agentId}/delete"),
            Need::Role(Role::Admin)
        );
        assert_eq!(
            need(&post, "/dashboard/w/{ws}/agents/{agentId}"),
            Need::Role(Role::Member)
        );
        assert_eq!(
            need(&get, "/dashboard/w/{ws}/usage"),
            Need::Role(Role::Member)
        );
    }
}
