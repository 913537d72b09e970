//! `agentbase members`: a workspace's dashboard members, managed by the instance
//! administrator (whoever runs the CLI on the data directory): list, invite (a
//! one-time link where they choose a password), reset a password (a new link;
//! the old password and their sessions end), remove.

use agentbase_core::member::{Acting, Member};
use agentbase_service::App;
use clap::Subcommand;
use serde_json::json;

use crate::{describe, print_json};

#[derive(Subcommand)]
pub enum MembersCmd {
    /// The workspace's members (pending invitations included).
    List {
        /// Workspace id (default: the first workspace).
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Invite someone by email; prints the one-time link (valid 7 days) they
    /// follow to join: someone new chooses a password there, someone with an
    /// account signs in and accepts. Nobody is in before they follow it.
    Invite {
        email: String,
        /// owner, admin or member.
        #[arg(long, default_value = "member")]
        role: String,
        /// Display name (default: the part of the email before the @).
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Reset a member's password (by email or id): it stops working, their
    /// sessions end, and a one-time link to choose a new one is printed.
    ResetPassword {
        member: String,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Remove a member (by email or id) from the workspace.
    Remove {
        member: String,
        #[arg(long)]
        workspace: Option<String>,
    },
}

fn member_json(m: &Member) -> serde_json::Value {
    json!({"id": m.id, "email": m.email, "name": m.name, "role": m.role.as_str(),
           "status": if m.active { "active" } else { "invited" },
           "workspaceId": m.workspace_id,
           "joinedAt": agentbase_core::time_fmt::iso8601(m.joined_at)})
}

pub async fn members(app: &App, cmd: MembersCmd, as_json: bool) -> anyhow::Result<()> {
    let workspace = match &cmd {
        MembersCmd::List { workspace }
        | MembersCmd::Invite { workspace, .. }
        | MembersCmd::ResetPassword { workspace, .. }
        | MembersCmd::Remove { workspace, .. } => workspace.clone(),
    };
    let ws = app
        .accounts()
        .resolve_workspace(workspace.as_deref())
        .await
        .map_err(describe)?;
    let by = Acting::Administrator;
    match cmd {
        MembersCmd::List { .. } => {
            let list = app.members().list(&ws.id).await.map_err(describe)?;
            if as_json {
                print_json(&list.iter().map(member_json).collect());
            } else {
                for m in list {
                    let status = if m.active { "active" } else { "invited" };
                    println!("{}\t{}\t{}\t{status}\t{}", m.id, m.email, m.role, m.name);
                }
            }
        }
        MembersCmd::Invite {
            email, role, name, ..
        } => {
            let invited = app
                .members()
                .invite_member(by, &ws.id, &email, &name, &role)
                .await
                .map_err(describe)?;
            let link = app.members().link_url(&invited.token);
            if as_json {
                let mut v = member_json(&invited.member);
                v["link"] = json!(link);
                print_json(&v);
            } else {
                let m = &invited.member;
                println!(
                    "Invited {} as {} to workspace {}. Send them this link (works once, for 7 days):\n\n    {link}\n",
                    m.email, m.role, ws.id
                );
            }
        }
        MembersCmd::ResetPassword { member, .. } => {
            let (m, token) = app
                .members()
                .reset_member_password(by, &ws.id, &member)
                .await
                .map_err(describe)?;
            let link = app.members().link_url(&token);
            if as_json {
                let mut v = member_json(&m);
                v["link"] = json!(link);
                print_json(&v);
            } else {
                println!(
                    "{}'s password no longer works and their sessions ended. The link to choose a new one \
                     (works once, for 7 days):\n\n    {link}\n",
                    m.email
                );
            }
        }
        MembersCmd::Remove { member, .. } => {
            let m = app
                .members()
                .remove_member(by, &ws.id, &member)
                .await
                .map_err(describe)?;
            if as_json {
                print_json(&json!({"removed": member_json(&m)}));
            } else {
                println!("Removed {} from workspace {}.", m.email, ws.id);
            }
        }
    }
    Ok(())
}
