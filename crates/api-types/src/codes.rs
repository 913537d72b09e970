//! Error codes of the Chatbase v2 contract (and the few agentbase adds, marked).

pub const VALIDATION_INVALID_BODY: &str = "VALIDATION_INVALID_BODY";
pub const VALIDATION_INVALID_JSON: &str = "VALIDATION_INVALID_JSON";
/// agentbase: the body is larger than `server.body_limit_bytes`.
pub const VALIDATION_BODY_TOO_LARGE: &str = "VALIDATION_BODY_TOO_LARGE";
/// agentbase: the request's headers (with its URL) are larger than the server takes.
pub const VALIDATION_HEADERS_TOO_LARGE: &str = "VALIDATION_HEADERS_TOO_LARGE";
/// agentbase: the URL's path does not decode to UTF-8 (`/agents/%FF`), so no id in
/// it can name anything.
pub const VALIDATION_INVALID_PATH: &str = "VALIDATION_INVALID_PATH";
/// agentbase: the workspace has `crawler.runs_per_workspace` crawler runs going.
pub const CRAWL_RUNS_LIMIT_REACHED: &str = "CRAWL_RUNS_LIMIT_REACHED";
/// Apify's `run-failed` (400): a synchronous run ended other than SUCCEEDED.
pub const RUN_FAILED: &str = "RUN_FAILED";
/// Apify's `run-timeout-exceeded` (408): a synchronous run had not ended when the
/// endpoint stopped waiting (the run goes on).
pub const RUN_TIMEOUT_EXCEEDED: &str = "RUN_TIMEOUT_EXCEEDED";
/// agentbase: the request was not answered within the server's deadline.
pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
pub const AUTH_MISSING_API_KEY: &str = "AUTH_MISSING_API_KEY";
pub const AUTH_INVALID_API_KEY: &str = "AUTH_INVALID_API_KEY";
pub const AUTH_EXPIRED_API_KEY: &str = "AUTH_EXPIRED_API_KEY";
/// agentbase: a dashboard script request without its session's CSRF token.
pub const AUTH_CSRF_TOKEN_INVALID: &str = "AUTH_CSRF_TOKEN_INVALID";
pub const SUBSCRIPTION_API_RESTRICTED_PLAN: &str = "SUBSCRIPTION_API_RESTRICTED_PLAN";
pub const AGENT_NOT_FOUND: &str = "AGENT_NOT_FOUND";
pub const RESOURCE_NOT_FOUND: &str = "RESOURCE_NOT_FOUND";
/// agentbase: the route exists but not for this method.
pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
/// agentbase: a state conflict not covered by a more specific code.
pub const CONFLICT: &str = "CONFLICT";
/// agentbase: a workspace member's role does not allow the action.
pub const ROLE_NOT_ALLOWED: &str = "ROLE_NOT_ALLOWED";
pub const RATE_LIMIT_TOO_MANY_REQUESTS: &str = "RATE_LIMIT_TOO_MANY_REQUESTS";
pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
/// agentbase: a backend the server needs (database, Redis) cannot be reached.
pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
pub const VALIDATION_INVALID_DATE_RANGE: &str = "VALIDATION_INVALID_DATE_RANGE";
pub const RESOURCE_MESSAGE_NOT_FOUND: &str = "RESOURCE_MESSAGE_NOT_FOUND";
pub const RESOURCE_TOOL_CALL_NOT_FOUND: &str = "RESOURCE_TOOL_CALL_NOT_FOUND";
pub const RESOURCE_MESSAGE_NOT_ASSISTANT: &str = "RESOURCE_MESSAGE_NOT_ASSISTANT";
pub const CHAT_CREDITS_EXHAUSTED: &str = "CHAT_CREDITS_EXHAUSTED";
pub const CHAT_AGENT_CREDITS_EXHAUSTED: &str = "CHAT_AGENT_CREDITS_EXHAUSTED";
pub const CHAT_RETRY_MESSAGE_NOT_FOUND: &str = "CHAT_RETRY_MESSAGE_NOT_FOUND";
pub const CHAT_RETRY_NO_USER_MESSAGE: &str = "CHAT_RETRY_NO_USER_MESSAGE";
pub const CHAT_CONVERSATION_MISMATCH: &str = "CHAT_CONVERSATION_MISMATCH";
pub const CHAT_CONVERSATION_NOT_ONGOING: &str = "CHAT_CONVERSATION_NOT_ONGOING";
/// agentbase: another turn of the conversation is running (409).
pub const CHAT_CONVERSATION_BUSY: &str = "CHAT_CONVERSATION_BUSY";
/// agentbase: the model's queue is full (503).
pub const CHAT_MODEL_BUSY: &str = "CHAT_MODEL_BUSY";
pub const CHAT_STREAMING_ERROR: &str = "CHAT_STREAMING_ERROR";
pub const SOURCE_NOT_FOUND: &str = "SOURCE_NOT_FOUND";
pub const SOURCE_DUPLICATE: &str = "SOURCE_DUPLICATE";
pub const SOURCE_SIZE_LIMIT_EXCEEDED: &str = "SOURCE_SIZE_LIMIT_EXCEEDED";
/// agentbase: a workspace's Apify key-value records are at its plan's limit.
pub const STORAGE_LIMIT_EXCEEDED: &str = "STORAGE_LIMIT_EXCEEDED";
/// agentbase: the workspace has as many agents as its plan allows.
pub const AGENT_LIMIT_REACHED: &str = "AGENT_LIMIT_REACHED";
pub const AGENT_NOT_TRAINED: &str = "AGENT_NOT_TRAINED";
pub const PLAN_FEATURE_NOT_AVAILABLE: &str = "PLAN_FEATURE_NOT_AVAILABLE";
/// agentbase: the widget serves public agents only (403).
pub const AGENT_NOT_PUBLIC: &str = "AGENT_NOT_PUBLIC";
/// agentbase: the page embedding the widget is not one of the agent's allowed domains (403).
pub const WIDGET_ORIGIN_NOT_ALLOWED: &str = "WIDGET_ORIGIN_NOT_ALLOWED";
/// agentbase: the widget's visitor is in one of the agent's `blockedCountries` (403).
pub const WIDGET_COUNTRY_BLOCKED: &str = "WIDGET_COUNTRY_BLOCKED";
/// agentbase: a `Content-Encoding` other than gzip, deflate, br or identity (415).
pub const VALIDATION_UNSUPPORTED_ENCODING: &str = "VALIDATION_UNSUPPORTED_ENCODING";
pub const TICKET_NOT_FOUND: &str = "TICKET_NOT_FOUND";
pub const TICKET_INVALID_STATUS: &str = "TICKET_INVALID_STATUS";
pub const TICKET_TEAM_NOT_FOUND: &str = "TICKET_TEAM_NOT_FOUND";
pub const TICKET_TEAM_MEMBER_NOT_FOUND: &str = "TICKET_TEAM_MEMBER_NOT_FOUND";
pub const CONVERSATION_NOT_TAKEN_OVER: &str = "CONVERSATION_NOT_TAKEN_OVER";
pub const TEAM_MEMBER_NOT_FOUND: &str = "TEAM_MEMBER_NOT_FOUND";
pub const MESSAGE_CONTENT_NOT_RENDERABLE: &str = "MESSAGE_CONTENT_NOT_RENDERABLE";
