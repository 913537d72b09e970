//! Error codes of the Chatbase v2 contract (and the few agentbase adds, marked).

pub const VALIDATION_INVALID_BODY: &str = "VALIDATION_INVALID_BODY";
pub const VALIDATION_INVALID_JSON: &str = "VALIDATION_INVALID_JSON";
/// agentbase: the body is larger than `server.body_limit_bytes`.
pub const VALIDATION_BODY_TOO_LARGE: &str = "VALIDATION_BODY_TOO_LARGE";
pub const AUTH_MISSING_API_KEY: &str = "AUTH_MISSING_API_KEY";
pub const AUTH_INVALID_API_KEY: &str = "AUTH_INVALID_API_KEY";
pub const AUTH_EXPIRED_API_KEY: &str = "AUTH_EXPIRED_API_KEY";
pub const SUBSCRIPTION_API_RESTRICTED_PLAN: &str = "SUBSCRIPTION_API_RESTRICTED_PLAN";
pub const AGENT_NOT_FOUND: &str = "AGENT_NOT_FOUND";
pub const RESOURCE_NOT_FOUND: &str = "RESOURCE_NOT_FOUND";
/// agentbase: the route exists but not for this method.
pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
/// agentbase: a state conflict not covered by a more specific code.
pub const CONFLICT: &str = "CONFLICT";
pub const RATE_LIMIT_TOO_MANY_REQUESTS: &str = "RATE_LIMIT_TOO_MANY_REQUESTS";
pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
/// agentbase: a backend the server needs (database, Redis) cannot be reached.
pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
