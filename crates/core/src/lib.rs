//! Domain types shared by every adapter: ids, plans, workspaces, keys, agents, the
//! error model, clocks and the rate-limit decision. No IO lives here.

#![forbid(unsafe_code)]

pub mod agent;
pub mod agent_settings;
pub mod clock;
pub mod concurrency;
pub mod contact;
pub mod conversation;
pub mod crawl_run;
pub mod cursor;
pub mod error;
pub mod helpdesk;
pub mod ids;
pub mod keys;
pub mod knowledge;
pub mod lead;
pub mod member;
pub mod model;
pub mod password;
pub mod plan;
pub mod prompt;
pub mod quote;
pub mod ratelimit;
pub mod run_webhook;
pub mod time_fmt;
pub mod webhook;
pub mod workspace;

pub use agent::{Action, Agent, AgentPatch, AgentStatus, IpRateLimits, NewAgent, Visibility};
pub use clock::{Clock, ManualClock, SystemClock};
pub use cursor::Cursor;
pub use error::{Error, FieldErrors, Rejection, Resource, Result};
pub use keys::{ApiKey, GeneratedKey, KeyCheck};
pub use plan::Plan;
pub use ratelimit::RateDecision;
pub use workspace::Workspace;

/// Milliseconds since the Unix epoch; the one time representation in the record.
pub type Millis = i64;
