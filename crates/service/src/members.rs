//! Workspace members: invitations and password resets as one-time links, removal,
//! signing in by email and password, and the reads the helpdesk resolves
//! `assigneeId`/`assigneeEmail`/`authorEmail` with ([`Members::list`],
//! [`Members::member_by_email`], [`Members::member_by_id`]). Who may manage whom is
//! `core::member::may_manage`; the dashboard checks membership per request.

use std::sync::OnceLock;

use agentbase_core::keys::sha256_hex;
use agentbase_core::member::{
    self, Account, Acting, LINK_TTL_MS, LinkKind, Member, Role, may_manage,
};
use agentbase_core::{Error, Resource, Result, Workspace, ids, password};
use agentbase_store::{NewLink, NewMember, OpenLink};

use std::sync::Arc;

use agentbase_core::Clock;
use agentbase_store::Store;

use crate::dashboard::SignedIn;
use crate::settings::Settings;

/// Random link tokens: 43 alphanumeric characters ≈ 256 bits.
const LINK_TOKEN_LEN: usize = 43;

/// Where a one-time link token is followed (under the server's root).
pub fn link_path(token: &str) -> String {
    format!("/dashboard/invite/{token}")
}

/// An invitation: the member (not in yet), and the link to send them. Someone
/// new chooses their password there; someone with an account signs in and joins.
#[derive(Debug, Clone)]
pub struct Invited {
    pub member: Member,
    pub token: String,
}

/// A hash to check unknown emails against, so a wrong email costs the same time
/// as a wrong password and sign-in does not tell which emails have accounts.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| password::hash(&ids::alphanumeric(24)))
}

fn not_a_member() -> Error {
    Error::invalid("member", "is not a member of this workspace")
}

fn refused(what: &str) -> Error {
    Error::Forbidden(format!("your role may not {what}"))
}

/// Workspace members, their one-time links and their sign-in.
pub struct Members {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    sessions: Arc<crate::dashboard::Sessions>,
}

impl Members {
    pub(crate) fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        settings: Arc<Settings>,
        sessions: Arc<crate::dashboard::Sessions>,
    ) -> Self {
        Members {
            store,
            clock,
            settings,
            sessions,
        }
    }

    fn now(&self) -> agentbase_core::Millis {
        self.clock.now_ms()
    }

    /// A link token as the member opens it: the server's public root + the path.
    pub fn link_url(&self, token: &str) -> String {
        let base = self.settings.base_url();
        let root = base.strip_suffix("/api/v2").unwrap_or(&base);
        format!("{root}{}", link_path(token))
    }

    /// The workspace's members (pending invitations included, `active` false), by
    /// email. For the helpdesk: `id` is the platform user id tickets name.
    pub async fn list(&self, workspace_id: &str) -> Result<Vec<Member>> {
        self.store.workspace_members(workspace_id).await
    }

    /// The workspace's member with this email (case-insensitive); `None` for
    /// anyone else, an address that is not one included.
    pub async fn member_by_email(&self, workspace_id: &str, email: &str) -> Result<Option<Member>> {
        let Ok(email) = member::normalize_email(email) else {
            return Ok(None);
        };
        self.store.workspace_member(workspace_id, &email).await
    }

    /// The workspace's member with this account id; `None` for anyone else.
    pub async fn member_by_id(&self, workspace_id: &str, id: &str) -> Result<Option<Member>> {
        if id.contains('@') {
            return Ok(None);
        }
        self.store.workspace_member(workspace_id, id).await
    }

    /// A member named by account id or email (as the CLI and forms name them).
    async fn named_member(&self, workspace_id: &str, who: &str) -> Result<Member> {
        let found = if who.contains('@') {
            self.member_by_email(workspace_id, who).await?
        } else {
            self.member_by_id(workspace_id, who).await?
        };
        found.ok_or_else(not_a_member)
    }

    /// The account a member's session belongs to.
    pub async fn member_account(&self, member_id: &str) -> Result<Option<Account>> {
        self.store.member_account(member_id).await
    }

    /// The member's role in the workspace; `None` when they do not belong to it.
    pub async fn member_role(&self, workspace_id: &str, member_id: &str) -> Result<Option<Role>> {
        self.store.member_role(workspace_id, member_id).await
    }

    /// The workspaces a member belongs to, with their role in each.
    pub async fn member_workspaces(&self, member_id: &str) -> Result<Vec<(Workspace, Role)>> {
        self.store.member_workspaces(member_id).await
    }

    fn new_link(kind: LinkKind, now: agentbase_core::Millis) -> (String, NewLink) {
        let token = ids::alphanumeric(LINK_TOKEN_LEN);
        let link = NewLink {
            id: sha256_hex(&token),
            kind,
            expires_at: now + LINK_TTL_MS,
        };
        (token, link)
    }

    /// Invites `email` into the workspace with `role`: a one-time link, valid for
    /// [`LINK_TTL_MS`], which they follow to join. Nobody is in a workspace they
    /// did not accept, and the answer is the same whether the email has an account.
    pub async fn invite_member(
        &self,
        by: Acting,
        workspace_id: &str,
        email: &str,
        name: &str,
        role: &str,
    ) -> Result<Invited> {
        let (email, name, role) = member::check_invite(email, name, role)?;
        if !may_manage(by, role) {
            return Err(refused(&format!("invite an {role}")));
        }
        if self.store.workspace(workspace_id).await?.is_none() {
            return Err(Error::NotFound(Resource::Workspace));
        }
        let now = self.now();
        let (token, link) = Self::new_link(LinkKind::Invite, now);
        let member = self
            .store
            .add_member(
                workspace_id,
                &NewMember {
                    new_id: &ids::uuid_v4(),
                    email: &email,
                    name: &name,
                    role,
                },
                &link,
                now,
            )
            .await?;
        Ok(Invited { member, token })
    }

    /// Resets a member's password: the old one stops working, their sessions
    /// end, and the returned one-time link sets a new one.
    pub async fn reset_member_password(
        &self,
        by: Acting,
        workspace_id: &str,
        who: &str,
    ) -> Result<(Member, String)> {
        let m = self.named_member(workspace_id, who).await?;
        if !may_manage(by, m.role) {
            return Err(refused(&format!("reset an {}'s password", m.role)));
        }
        // An account is the person's in every workspace they belong to: a reset
        // link hands all of them to whoever follows it. So a workspace's own owners
        // and admins reset only accounts that belong to that workspace alone.
        if by != Acting::Administrator {
            let elsewhere = self.store.member_workspaces(&m.id).await?;
            if elsewhere.iter().any(|(w, _)| w.id != workspace_id) {
                return Err(Error::Forbidden(format!(
                    "{} also belongs to other workspaces: only the instance administrator \
                     can reset their password (`agentbase members reset-password`)",
                    m.email
                )));
            }
        }
        let now = self.now();
        let (token, link) = Self::new_link(LinkKind::Reset, now);
        self.store
            .reset_member(workspace_id, &m.id, &link, now)
            .await?;
        Ok((m, token))
    }

    /// Takes a member out of the workspace; their session no longer reaches it
    /// (and ends, when they belong to no other workspace).
    pub async fn remove_member(&self, by: Acting, workspace_id: &str, who: &str) -> Result<Member> {
        let m = self.named_member(workspace_id, who).await?;
        if !may_manage(by, m.role) {
            return Err(refused(&format!("remove an {}", m.role)));
        }
        if !self.store.remove_member(workspace_id, &m.id).await? {
            return Err(not_a_member());
        }
        Ok(m)
    }

    /// The invitation or reset a link token names, while it can still be used.
    pub async fn open_link(&self, token: &str) -> Result<Option<OpenLink>> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        self.store.open_link(&sha256_hex(token), self.now()).await
    }

    /// Follows a link: sets the member's password (and name, when given) and signs
    /// them in. An expired, used or unknown link is refused.
    pub async fn accept_link(
        &self,
        token: &str,
        chosen: &str,
        name: Option<&str>,
    ) -> Result<SignedIn> {
        password::check_strength(chosen).map_err(|m| Error::invalid("password", m))?;
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        if let Some(n) = name
            && (n.chars().count() > member::NAME_MAX || n.chars().any(char::is_control))
        {
            return Err(Error::invalid(
                "name",
                format!("must be at most {} characters of text", member::NAME_MAX),
            ));
        }
        let expired = || Error::invalid("link", "has expired or was already used");
        let Some(open) = self.open_link(token).await? else {
            return Err(expired());
        };
        if open.kind == LinkKind::Invite && open.account.has_password {
            return Err(Error::invalid(
                "link",
                "is an invitation for an account that has a password: sign in to accept it",
            ));
        }
        let to_hash = chosen.to_owned();
        let hash = self
            .sessions
            .hashing(move || password::hash(&to_hash))
            .await?;
        // The session row is finished (with the member id) inside the transaction.
        let (signed_in, row) = self.sessions.fresh_session(None);
        match self
            .store
            .use_link(&sha256_hex(token), &hash, name, &row)
            .await?
        {
            Some(_) => Ok(signed_in),
            None => Err(expired()),
        }
    }

    /// Accepts the invitation `token` names for `member_id`, the account signed
    /// in: only the account it was made for can. The workspace joined.
    pub async fn join_by_link(&self, token: &str, member_id: &str) -> Result<String> {
        let joined = self
            .store
            .join_by_link(&sha256_hex(token), member_id, self.now())
            .await?;
        joined.map(|j| j.workspace_id).ok_or_else(|| {
            Error::invalid(
                "link",
                "has expired, was already used, or is an invitation for another account",
            )
        })
    }

    /// Checks a member's email and password (off the runtime) and opens their
    /// session. `None` for a wrong pair, an unknown email or a pending invitation,
    /// all taking the same time.
    pub async fn member_sign_in(&self, email: &str, attempt: &str) -> Result<Option<SignedIn>> {
        let found = match member::normalize_email(email) {
            Ok(e) => self.store.member_password(&e).await?,
            Err(_) => None,
        };
        let (member_id, stored) = match found {
            Some((id, Some(hash))) => (Some(id), hash),
            _ => (None, decoy_hash().to_owned()),
        };
        let attempt = attempt.to_owned();
        let ok = self
            .sessions
            .hashing(move || password::verify(&attempt, &stored))
            .await?;
        let Some(member_id) = member_id.filter(|_| ok) else {
            return Ok(None);
        };
        let (signed_in, row) = self.sessions.fresh_session(Some(member_id));
        self.store.insert_session(&row).await?;
        Ok(Some(signed_in))
    }
}

/// A member just invited or reset, the one-time link to send them (its URL), and
/// the workspace's members after the change: what the dashboard's members page
/// shows next.
#[derive(Debug, Clone)]
pub struct MemberLink {
    pub member: Member,
    pub link_url: String,
    pub members: Vec<Member>,
}

impl Members {
    /// [`Members::invite_member`], then the workspace's members.
    pub async fn invite_and_list(
        &self,
        by: Acting,
        workspace_id: &str,
        email: &str,
        name: &str,
        role: &str,
    ) -> Result<MemberLink> {
        let invited = (self.invite_member(by, workspace_id, email, name, role)).await?;
        Ok(MemberLink {
            link_url: self.link_url(&invited.token),
            member: invited.member,
            members: self.list(workspace_id).await?,
        })
    }

    /// [`Members::reset_member_password`], then the workspace's members.
    pub async fn reset_and_list(
        &self,
        by: Acting,
        workspace_id: &str,
        who: &str,
    ) -> Result<MemberLink> {
        let (member, token) = self.reset_member_password(by, workspace_id, who).await?;
        Ok(MemberLink {
            member,
            link_url: self.link_url(&token),
            members: self.list(workspace_id).await?,
        })
    }

    /// The workspaces a dashboard session sees: a member's own, with their role;
    /// for the instance administrator (`None`), all of them.
    pub async fn workspaces_of(
        &self,
        member_id: Option<&str>,
    ) -> Result<Vec<(Workspace, Option<Role>)>> {
        Ok(match member_id {
            Some(id) => (self.member_workspaces(id).await?.into_iter())
                .map(|(w, role)| (w, Some(role)))
                .collect(),
            None => (self.store.workspaces().await?.into_iter())
                .map(|w| (w, None))
                .collect(),
        })
    }
}

/// What a dashboard sign-in attempt came to.
#[derive(Debug)]
pub enum SignInAttempt {
    SignedIn(SignedIn),
    /// The password (or the email and password) did not match.
    Wrong,
    /// Past the client's per-minute allowance: not tried.
    Limited(agentbase_core::RateDecision),
    /// The limiter could not be asked: not tried.
    Unavailable(agentbase_limiter::LimiterError),
}

impl Members {
    /// A dashboard sign-in, counted against the client's per-minute allowance
    /// first: with an email, a workspace member's; without, the instance
    /// administrator's.
    pub async fn dashboard_sign_in(
        &self,
        client_ip: &str,
        email: Option<&str>,
        attempt: &str,
    ) -> Result<SignInAttempt> {
        match self.sessions.sign_in_allowed(client_ip).await {
            Ok(d) if d.allowed => {}
            Ok(d) => return Ok(SignInAttempt::Limited(d)),
            Err(e) => return Ok(SignInAttempt::Unavailable(e)),
        }
        let signed_in = match email {
            Some(email) => self.member_sign_in(email, attempt).await?,
            None => self.sessions.sign_in(attempt).await?,
        };
        Ok(signed_in.map_or(SignInAttempt::Wrong, SignInAttempt::SignedIn))
    }
}
