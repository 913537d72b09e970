//! Route handlers: extract, validate, call one service function, map the result.

pub mod agents;
pub mod apify;
pub mod apify_webhooks;
pub mod chat;
pub mod contacts;
pub mod conversations;
pub mod dataset_items;
pub mod helpdesk;
pub mod leads;
pub mod sources;
pub mod system;
pub mod v1;
pub mod webhooks;
