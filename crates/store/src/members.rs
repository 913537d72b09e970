//! Workspace members' record: accounts (one per email), their roles per workspace,
//! one-time links (invitations, password resets) kept as token hashes, and the
//! sessions a member's removal or reset must end.

use agentbase_core::member::{Account, LinkKind, Member, Role};
use agentbase_core::{Error, Millis, Result, Workspace};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{DashboardSession, Store, db_err, rows};

const MEMBER_COLUMNS: &str = "m.id, wm.workspace_id, m.email, m.name, m.password_hash, \
     wm.role, wm.created_at, wm.accepted_at";

fn role_of(row: &AnyRow) -> Result<Role> {
    let role: String = row.try_get("role").map_err(db_err)?;
    role.parse()
        .map_err(|_| Error::Storage(format!("stored role {role:?} is not a role")))
}

fn member(row: &AnyRow) -> Result<Member> {
    let hash: Option<String> = row.try_get("password_hash").map_err(db_err)?;
    let accepted: Option<i64> = row.try_get("accepted_at").map_err(db_err)?;
    Ok(Member {
        id: row.try_get("id").map_err(db_err)?,
        workspace_id: row.try_get("workspace_id").map_err(db_err)?,
        email: row.try_get("email").map_err(db_err)?,
        name: row.try_get("name").map_err(db_err)?,
        role: role_of(row)?,
        active: hash.is_some() && accepted.is_some(),
        joined_at: row.try_get("created_at").map_err(db_err)?,
    })
}

fn account(row: &AnyRow) -> Result<Account> {
    let hash: Option<String> = row.try_get("password_hash").map_err(db_err)?;
    Ok(Account {
        id: row.try_get("id").map_err(db_err)?,
        email: row.try_get("email").map_err(db_err)?,
        name: row.try_get("name").map_err(db_err)?,
        has_password: hash.is_some(),
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

/// A one-time link to store: the token's hash, never the token.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub id: String,
    pub kind: LinkKind,
    pub expires_at: Millis,
}

/// Whom to add: the account is made under `new_id` only when `email` has none.
#[derive(Debug, Clone, Copy)]
pub struct NewMember<'a> {
    pub new_id: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
}

/// A link that can still be followed, with whom it is for.
#[derive(Debug, Clone)]
pub struct OpenLink {
    pub kind: LinkKind,
    pub account: Account,
    pub workspace: Workspace,
}

/// A followed invitation: the member, and the workspace they joined.
#[derive(Debug, Clone)]
pub struct Joined {
    pub member_id: String,
    pub workspace_id: String,
}

impl Store {
    /// The workspace's members, by email.
    pub async fn workspace_members(&self, workspace_id: &str) -> Result<Vec<Member>> {
        let rows = sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM workspace_members wm \
             JOIN members m ON m.id = wm.member_id WHERE wm.workspace_id = $1 ORDER BY m.email"
        ))
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(member).collect()
    }

    /// One member of the workspace, by account id or (lower-cased) email.
    pub async fn workspace_member(
        &self,
        workspace_id: &str,
        id_or_email: &str,
    ) -> Result<Option<Member>> {
        let row = sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM workspace_members wm \
             JOIN members m ON m.id = wm.member_id \
             WHERE wm.workspace_id = $1 AND (m.id = $2 OR m.email = $2)"
        ))
        .bind(workspace_id)
        .bind(id_or_email)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(member).transpose()
    }

    /// The account behind a session.
    pub async fn member_account(&self, id: &str) -> Result<Option<Account>> {
        let row = sqlx::query(
            "SELECT id, email, name, password_hash, created_at FROM members WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(account).transpose()
    }

    /// For sign-in: the account id and its password hash (None while unset).
    pub async fn member_password(&self, email: &str) -> Result<Option<(String, Option<String>)>> {
        let row = sqlx::query("SELECT id, password_hash FROM members WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| {
            Ok((
                r.try_get("id").map_err(db_err)?,
                r.try_get("password_hash").map_err(db_err)?,
            ))
        })
        .transpose()
    }

    /// The member's role in the workspace, `None` when not a member of it (an
    /// invitation they have not accepted included).
    pub async fn member_role(&self, workspace_id: &str, member_id: &str) -> Result<Option<Role>> {
        let row = sqlx::query(
            "SELECT role FROM workspace_members \
             WHERE workspace_id = $1 AND member_id = $2 AND accepted_at IS NOT NULL",
        )
        .bind(workspace_id)
        .bind(member_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(role_of).transpose()
    }

    /// The workspaces the member belongs to, with the role in each (oldest first);
    /// invitations they have not accepted are not among them.
    pub async fn member_workspaces(&self, member_id: &str) -> Result<Vec<(Workspace, Role)>> {
        let rows = sqlx::query(
            "SELECT w.id, w.name, w.plan, w.created_at, wm.role FROM workspace_members wm \
             JOIN workspaces w ON w.id = wm.workspace_id \
             WHERE wm.member_id = $1 AND wm.accepted_at IS NOT NULL \
             ORDER BY w.created_at, w.id",
        )
        .bind(member_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| Ok((rows::workspace(r)?, role_of(r)?)))
            .collect()
    }

    /// Invites the account for `email` (made now, under `new_id`, when there is
    /// none) into the workspace with `role`, and stores `link`, its invitation, in
    /// one transaction. The membership counts once the link is followed
    /// ([`Store::use_link`], [`Store::join_by_link`]). Already a member, or
    /// already invited: `Conflict`.
    pub async fn add_member(
        &self,
        workspace_id: &str,
        m: &NewMember<'_>,
        link: &NewLink,
        now: Millis,
    ) -> Result<Member> {
        let NewMember {
            new_id,
            email,
            name,
            role,
        } = *m;
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO members (id, email, name, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, NULL, $4, $4) ON CONFLICT (email) DO NOTHING",
        )
        .bind(new_id)
        .bind(email)
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let row = sqlx::query(
            "SELECT id, email, name, password_hash, created_at FROM members WHERE email = $1",
        )
        .bind(email)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let acc = account(&row)?;
        let added = sqlx::query(
            "INSERT INTO workspace_members (workspace_id, member_id, role, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, member_id) DO NOTHING",
        )
        .bind(workspace_id)
        .bind(&acc.id)
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if added.rows_affected() == 0 {
            return Err(Error::Conflict(format!(
                "{email} is already a member of this workspace, or invited to it"
            )));
        }
        insert_link(&mut tx, link, &acc.id, workspace_id, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Member {
            id: acc.id,
            workspace_id: workspace_id.to_owned(),
            email: acc.email,
            name: acc.name,
            role,
            active: false,
            joined_at: now,
        })
    }

    /// A password reset: the member's password is cleared, every session of theirs
    /// ends, earlier unused links stop working, and `link` is stored; one
    /// transaction.
    pub async fn reset_member(
        &self,
        workspace_id: &str,
        member_id: &str,
        link: &NewLink,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query("UPDATE members SET password_hash = NULL, updated_at = $2 WHERE id = $1")
            .bind(member_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for q in [
            "DELETE FROM dashboard_sessions WHERE member_id = $1",
            "DELETE FROM member_links WHERE member_id = $1 AND used_at IS NULL",
        ] {
            sqlx::query(q)
                .bind(member_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        insert_link(&mut tx, link, member_id, workspace_id, now).await?;
        tx.commit().await.map_err(db_err)
    }

    /// Takes the member out of the workspace; an account left in no workspace is
    /// deleted with its sessions and links. False when it was not a member.
    pub async fn remove_member(&self, workspace_id: &str, member_id: &str) -> Result<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let removed =
            sqlx::query("DELETE FROM workspace_members WHERE workspace_id = $1 AND member_id = $2")
                .bind(workspace_id)
                .bind(member_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        if removed.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM member_links WHERE member_id = $1 AND workspace_id = $2")
            .bind(member_id)
            .bind(workspace_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let left: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM workspace_members WHERE member_id = $1")
                .bind(member_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?
                .try_get("n")
                .map_err(db_err)?;
        if left == 0 {
            for q in [
                "DELETE FROM dashboard_sessions WHERE member_id = $1",
                "DELETE FROM member_links WHERE member_id = $1",
                "DELETE FROM members WHERE id = $1",
            ] {
                sqlx::query(q)
                    .bind(member_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    /// The link a token hash names, when it is unused, unexpired at `now`, and its
    /// member still belongs to its workspace.
    pub async fn open_link(&self, id: &str, now: Millis) -> Result<Option<OpenLink>> {
        let row = sqlx::query(
            "SELECT l.kind, m.id, m.email, m.name, m.password_hash, m.created_at, \
             w.id AS workspace_id, w.name AS workspace_name, w.plan, w.created_at AS workspace_created \
             FROM member_links l JOIN members m ON m.id = l.member_id \
             JOIN workspace_members wm ON wm.member_id = l.member_id AND wm.workspace_id = l.workspace_id \
             JOIN workspaces w ON w.id = l.workspace_id \
             WHERE l.id = $1 AND l.used_at IS NULL AND l.expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(r) = row else { return Ok(None) };
        let kind: String = r.try_get("kind").map_err(db_err)?;
        let plan: String = r.try_get("plan").map_err(db_err)?;
        Ok(Some(OpenLink {
            kind: LinkKind::parse(&kind)
                .ok_or_else(|| Error::Storage(format!("stored link kind {kind:?}")))?,
            account: account(&r)?,
            workspace: Workspace {
                id: r.try_get("workspace_id").map_err(db_err)?,
                name: r.try_get("workspace_name").map_err(db_err)?,
                plan: plan
                    .parse()
                    .map_err(|_| Error::Storage(format!("stored plan {plan:?}")))?,
                created_at: r.try_get("workspace_created").map_err(db_err)?,
            },
        }))
    }

    /// Follows a link once: marks it used (refused when another request used it
    /// first, or it expired), sets the member's password (and name, when given),
    /// accepts the invitation, and opens `session` for them; one transaction. The
    /// member id, or `None`. An invitation for an account that has a password is
    /// refused here: its owner joins from their own session ([`Store::join_by_link`]).
    pub async fn use_link(
        &self,
        id: &str,
        password_hash: &str,
        name: Option<&str>,
        session: &DashboardSession,
    ) -> Result<Option<String>> {
        let now = session.created_at;
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let Some(row) = sqlx::query(
            "SELECT l.member_id, l.workspace_id, l.kind, m.password_hash FROM member_links l \
             JOIN workspace_members wm \
             ON wm.member_id = l.member_id AND wm.workspace_id = l.workspace_id \
             JOIN members m ON m.id = l.member_id \
             WHERE l.id = $1 AND l.used_at IS NULL AND l.expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        else {
            return Ok(None);
        };
        let followed = Joined {
            member_id: row.try_get("member_id").map_err(db_err)?,
            workspace_id: row.try_get("workspace_id").map_err(db_err)?,
        };
        let kind: String = row.try_get("kind").map_err(db_err)?;
        let hash: Option<String> = row.try_get("password_hash").map_err(db_err)?;
        if kind == LinkKind::Invite.as_str() && hash.is_some() {
            return Ok(None);
        }
        if !follow(&mut tx, id, &followed, now).await? {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE members SET password_hash = $2, name = COALESCE($3, name), updated_at = $4 \
             WHERE id = $1",
        )
        .bind(&followed.member_id)
        .bind(password_hash)
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let session = DashboardSession {
            member_id: Some(followed.member_id.clone()),
            ..session.clone()
        };
        crate::dashboard::insert_session_query(&session)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(followed.member_id))
    }

    /// Accepts an invitation for `member_id` (the account signed in) once: the
    /// link must be an unused, unexpired invitation for that very account. The
    /// workspace joined, or `None`.
    pub async fn join_by_link(
        &self,
        id: &str,
        member_id: &str,
        now: Millis,
    ) -> Result<Option<Joined>> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let Some(row) = sqlx::query(
            "SELECT l.workspace_id FROM member_links l JOIN workspace_members wm \
             ON wm.member_id = l.member_id AND wm.workspace_id = l.workspace_id \
             WHERE l.id = $1 AND l.member_id = $2 AND l.kind = $3 \
             AND l.used_at IS NULL AND l.expires_at > $4",
        )
        .bind(id)
        .bind(member_id)
        .bind(LinkKind::Invite.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        else {
            return Ok(None);
        };
        let joined = Joined {
            member_id: member_id.to_owned(),
            workspace_id: row.try_get("workspace_id").map_err(db_err)?,
        };
        if !follow(&mut tx, id, &joined, now).await? {
            return Ok(None);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(Some(joined))
    }
}

/// Marks link `id` used (false when another request used it first) and accepts
/// the membership it is for.
async fn follow(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    to: &Joined,
    now: Millis,
) -> Result<bool> {
    let marked =
        sqlx::query("UPDATE member_links SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
    if marked.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE workspace_members SET accepted_at = COALESCE(accepted_at, $3) \
         WHERE workspace_id = $1 AND member_id = $2",
    )
    .bind(&to.workspace_id)
    .bind(&to.member_id)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(true)
}

async fn insert_link(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    link: &NewLink,
    member_id: &str,
    workspace_id: &str,
    now: Millis,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO member_links (id, member_id, workspace_id, kind, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&link.id)
    .bind(member_id)
    .bind(workspace_id)
    .bind(link.kind.as_str())
    .bind(now)
    .bind(link.expires_at)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}
