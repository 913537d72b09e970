//! Workspace members: people who sign in to the dashboard with their own email and
//! password, each with a role per workspace. The instance administrator (the
//! operator password set at `init`) is not a member: it sees every workspace.
//! What each role may do is decided here, in one place (`may_manage`, `Role::at_least`).

use std::fmt;
use std::str::FromStr;

use crate::{Error, FieldErrors, Millis, Result};

/// Longest display name accepted.
pub const NAME_MAX: usize = 100;
/// How long an invitation or password-reset link stays valid.
pub const LINK_TTL_MS: Millis = 7 * 24 * 60 * 60 * 1000;

/// A member's role in one workspace, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything in the workspace, other owners included.
    Owner,
    /// Members (not owners) and API keys, agent deletion, and all a member does.
    Admin,
    /// Agents, their knowledge, conversations, the playground and usage.
    Member,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Admin, Role::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Role::Owner => 2,
            Role::Admin => 1,
            Role::Member => 0,
        }
    }

    /// Whether this role includes everything `needed` may do.
    pub fn at_least(self, needed: Role) -> bool {
        self.rank() >= needed.rank()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| Error::invalid("role", "must be one of owner, admin, member"))
    }
}

/// Who performs a member-management action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acting {
    /// The instance administrator (operator password, CLI).
    Administrator,
    /// A member with this role in the workspace acted on.
    As(Role),
}

/// Whether `by` may invite, reset or remove a member whose role is (or would be)
/// `target`: the administrator and owners manage anyone, admins manage admins and
/// members, members manage nobody.
pub fn may_manage(by: Acting, target: Role) -> bool {
    match by {
        Acting::Administrator | Acting::As(Role::Owner) => true,
        Acting::As(Role::Admin) => target != Role::Owner,
        Acting::As(Role::Member) => false,
    }
}

/// A person's account: one per email across the instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// A UUID: the "platform user id" the helpdesk's `assigneeId`/`authorId` name.
    pub id: String,
    /// Lower-cased.
    pub email: String,
    pub name: String,
    /// False until an invitation is accepted (or after a reset, until the link is used).
    pub has_password: bool,
    pub created_at: Millis,
}

/// An account's membership of one workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: String,
    pub workspace_id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// False while the invitation is pending (or after a reset, until the link is used).
    pub active: bool,
    pub joined_at: Millis,
}

/// What a one-time link does when followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Invite,
    Reset,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Invite => "invite",
            LinkKind::Reset => "reset",
        }
    }

    pub fn parse(s: &str) -> Option<LinkKind> {
        match s {
            "invite" => Some(LinkKind::Invite),
            "reset" => Some(LinkKind::Reset),
            _ => None,
        }
    }
}

/// The email as stored and compared: trimmed and lower-cased, checked.
pub fn normalize_email(email: &str) -> Result<String> {
    let e = email.trim().to_lowercase();
    if e.is_empty() {
        return Err(Error::invalid("email", "is required"));
    }
    if !crate::lead::looks_like_email(&e) {
        return Err(Error::invalid("email", "must be an email address"));
    }
    Ok(e)
}

/// An invitation's fields, every bad one named at once.
pub fn check_invite(email: &str, name: &str, role: &str) -> Result<(String, String, Role)> {
    let mut errors = FieldErrors::new();
    let email = normalize_email(email)
        .map_err(|e| collect(&mut errors, e))
        .ok();
    let name = name.trim();
    if name.chars().count() > NAME_MAX {
        errors.insert(
            "name".into(),
            format!("must be at most {NAME_MAX} characters"),
        );
    } else if name.chars().any(char::is_control) {
        errors.insert("name".into(), "must not contain control characters".into());
    }
    let role = role
        .parse::<Role>()
        .map_err(|e| collect(&mut errors, e))
        .ok();
    match (email, role) {
        (Some(email), Some(role)) if errors.is_empty() => {
            // A name left blank is the part of the email before the `@`.
            let name = if name.is_empty() {
                email.split('@').next().unwrap_or_default().to_owned()
            } else {
                name.to_owned()
            };
            Ok((email, name, role))
        }
        _ => Err(Error::Invalid(errors)),
    }
}

fn collect(errors: &mut FieldErrors, e: Error) {
    if let Error::Invalid(m) = e {
        errors.extend(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_order_and_decide_who_manages_whom() {
        assert_eq!("Admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("root".parse::<Role>().is_err());
        assert!(Role::Owner.at_least(Role::Admin));
        assert!(Role::Admin.at_least(Role::Member));
        assert!(!Role::Member.at_least(Role::Admin));
        assert!(may_manage(Acting::Administrator, Role::Owner));
        assert!(may_manage(Acting::As(Role::Owner), Role::Owner));
        assert!(may_manage(Acting::As(Role::Admin), Role::Admin));
        assert!(!may_manage(Acting::As(Role::Admin), Role::Owner));
        assert!(!may_manage(Acting::As(Role::Member), Role::Member));
    }

    #[test]
    fn invitations_are_checked_field_by_field() {
        let (email, name, role) = check_invite(" Ann@Example.COM ", "", "member").unwrap();
        assert_eq!(
            (email.as_str(), name.as_str(), role),
            ("ann@example.com", "ann", Role::Member)
        );
        let Err(Error::Invalid(e)) = check_invite("not-an-email", &"x".repeat(101), "root") else {
            panic!("accepted");
        };
        assert_eq!(
            e.keys().map(String::as_str).collect::<Vec<_>>(),
            ["email", "name", "role"]
        );
    }
}
