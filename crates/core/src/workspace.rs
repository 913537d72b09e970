//! A workspace: the tenant boundary. Every resource belongs to exactly one.

use crate::{Millis, Plan};

#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub plan: Plan,
    pub created_at: Millis,
}
