//! `ApiError`: every failure leaves the server as the Chatbase error envelope with
//! the contract's status and code. 5xx bodies say nothing internal; the cause goes
//! to the log inside the request's span.

use std::collections::BTreeMap;

use agentbase_api_types::codes;
use agentbase_api_types::{ErrorDetail, ErrorResponse};
use agentbase_core::{Error, Rejection, Resource};
use agentbase_service::AuthError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<BTreeMap<String, String>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: BTreeMap<String, String>) -> Self {
        self.details = Some(details);
        self
    }

    pub fn invalid_body(details: BTreeMap<String, String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            codes::VALIDATION_INVALID_BODY,
            "Invalid request",
        )
        .with_details(details)
    }

    pub fn invalid_field(field: &str, problem: impl Into<String>) -> Self {
        Self::invalid_body(BTreeMap::from([(field.to_owned(), problem.into())]))
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::RESOURCE_NOT_FOUND,
            "The requested item could not be found",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_SERVER_ERROR,
            "Something went wrong, please try again",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable, please try again later",
        )
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(Resource::Agent) => ApiError::new(
                StatusCode::NOT_FOUND,
                codes::AGENT_NOT_FOUND,
                "Agent not found",
            ),
            Error::NotFound(
                Resource::Workspace
                | Resource::ApiKey
                | Resource::Conversation
                | Resource::Actor
                | Resource::Run
                | Resource::Webhook,
            ) => ApiError::not_found(),
            Error::NotFound(Resource::Message) => ApiError::new(
                StatusCode::NOT_FOUND,
                codes::RESOURCE_MESSAGE_NOT_FOUND,
                "The specified message could not be found in this conversation",
            ),
            Error::NotFound(Resource::Contact) => ApiError::new(
                StatusCode::NOT_FOUND,
                codes::RESOURCE_NOT_FOUND,
                "Contact not found",
            ),
            Error::NotFound(Resource::CustomAttribute) => ApiError::new(
                StatusCode::NOT_FOUND,
                codes::RESOURCE_NOT_FOUND,
                "Custom attribute not found",
            ),
            Error::NotFound(Resource::Source) => ApiError::new(
                StatusCode::NOT_FOUND,
                codes::SOURCE_NOT_FOUND,
                "Source not found",
            ),
            Error::NotFound(Resource::Ticket) => ApiError::new(
                StatusCode::NOT_FOUND,
                codes::TICKET_NOT_FOUND,
                "The requested ticket could not be found",
            ),
            Error::NotFound(Resource::ToolCall) => ApiError::new(
                StatusCode::NOT_FOUND,
                codes::RESOURCE_TOOL_CALL_NOT_FOUND,
                "Tool call not found or expired",
            ),
            Error::Rejected(r) => rejection(r),
            Error::Invalid(details) => ApiError::invalid_body(details),
            Error::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, codes::CONFLICT, message)
            }
            Error::Forbidden(message) => {
                ApiError::new(StatusCode::FORBIDDEN, codes::ROLE_NOT_ALLOWED, message)
            }
            Error::Unavailable(cause) => {
                tracing::error!(%cause, "backend unavailable");
                ApiError::unavailable()
            }
            Error::Storage(cause) | Error::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                ApiError::internal()
            }
        }
    }
}

fn rejection(r: Rejection) -> ApiError {
    let (status, code, message) = match r {
        Rejection::ConversationMismatch => (
            StatusCode::NOT_FOUND,
            codes::CHAT_CONVERSATION_MISMATCH,
            "The conversation belongs to another agent",
        ),
        Rejection::ConversationNotOngoing => (
            StatusCode::CONFLICT,
            codes::CHAT_CONVERSATION_NOT_ONGOING,
            "The conversation has ended or was taken over",
        ),
        Rejection::ConversationBusy => (
            StatusCode::CONFLICT,
            codes::CHAT_CONVERSATION_BUSY,
            "Another message of this conversation is being answered; retry when it finishes",
        ),
        Rejection::CreditsExhausted => (
            StatusCode::PAYMENT_REQUIRED,
            codes::CHAT_CREDITS_EXHAUSTED,
            "Message limit reached",
        ),
        Rejection::AgentCreditsExhausted => (
            StatusCode::PAYMENT_REQUIRED,
            codes::CHAT_AGENT_CREDITS_EXHAUSTED,
            "The agent has reached its credit limit",
        ),
        Rejection::RetryMessageNotFound => (
            StatusCode::NOT_FOUND,
            codes::CHAT_RETRY_MESSAGE_NOT_FOUND,
            "Message not found in conversation",
        ),
        Rejection::RetryNoUserMessage => (
            StatusCode::BAD_REQUEST,
            codes::CHAT_RETRY_NO_USER_MESSAGE,
            "There is no user message before the target message",
        ),
        Rejection::MessageNotAssistant => (
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::RESOURCE_MESSAGE_NOT_ASSISTANT,
            "Only assistant messages support metadata updates",
        ),
        Rejection::ModelBusy => (
            StatusCode::SERVICE_UNAVAILABLE,
            codes::CHAT_MODEL_BUSY,
            "The model is busy, please try again shortly",
        ),
        Rejection::SourceDuplicate => (
            StatusCode::CONFLICT,
            codes::SOURCE_DUPLICATE,
            "A source with this content or URL and type already exists",
        ),
        Rejection::SourceSizeLimit => (
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::SOURCE_SIZE_LIMIT_EXCEEDED,
            "Chatbot storage limit exceeded",
        ),
        Rejection::AgentNotTrained => (
            StatusCode::CONFLICT,
            codes::AGENT_NOT_TRAINED,
            "Agent has not been trained yet. Train the agent before enabling auto-retrain.",
        ),
        Rejection::PlanFeatureNotAvailable => (
            StatusCode::FORBIDDEN,
            codes::PLAN_FEATURE_NOT_AVAILABLE,
            "Your plan does not include this feature",
        ),
        Rejection::TooManyRuns => (
            StatusCode::TOO_MANY_REQUESTS,
            codes::CRAWL_RUNS_LIMIT_REACHED,
            "The workspace has as many crawler runs going as it may; wait for one to finish",
        ),
        Rejection::TicketInvalidStatus => (
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::TICKET_INVALID_STATUS,
            "The requested status could not be applied",
        ),
        Rejection::TicketTeamNotFound => (
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::TICKET_TEAM_NOT_FOUND,
            "The requested team could not be found",
        ),
        Rejection::TicketTeamMemberNotFound => (
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::TICKET_TEAM_MEMBER_NOT_FOUND,
            "The requested assignee could not be found",
        ),
        Rejection::TeamMemberNotFound => (
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::TEAM_MEMBER_NOT_FOUND,
            "No team member matches the provided author",
        ),
        Rejection::ConversationNotTakenOver => (
            StatusCode::CONFLICT,
            codes::CONVERSATION_NOT_TAKEN_OVER,
            "The linked conversation is not taken over",
        ),
        Rejection::MessageContentNotRenderable => (
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::MESSAGE_CONTENT_NOT_RENDERABLE,
            "The message content renders to nothing",
        ),
    };
    ApiError::new(status, code, message)
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing => ApiError::new(
                StatusCode::UNAUTHORIZED,
                codes::AUTH_MISSING_API_KEY,
                "Authentication required",
            ),
            AuthError::Invalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                codes::AUTH_INVALID_API_KEY,
                "Invalid API key",
            ),
            AuthError::Expired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                codes::AUTH_EXPIRED_API_KEY,
                "The API key has expired",
            ),
            AuthError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                details: self.details,
            },
        };
        (self.status, Json(body)).into_response()
    }
}
