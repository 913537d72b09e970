//! Domain types onto the wire: one module per resource, each converting the
//! `core`/`service` types a handler gets back into the `api-types` shapes it sends
//! (by hand: domain types do not know the wire). Handlers and the CLI's JSON output
//! call these; nothing here does IO.

pub mod agents;
pub(crate) mod apify;
pub(crate) mod chat;
pub(crate) mod contacts;
pub(crate) mod conversations;
pub(crate) mod helpdesk;
pub(crate) mod sources;
pub(crate) mod v1;
pub(crate) mod webhooks;
pub(crate) mod widget;
