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

    /// A body past the limit the route reads (413).
    pub fn body_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::VALIDATION_BODY_TOO_LARGE,
            "The request body is too large",
        )
    }

    /// A body that did not arrive whole: cut short, or not within the body timeout.
    pub fn body_unreadable() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            codes::VALIDATION_INVALID_JSON,
            "Could not read the request body",
        )
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

/// A rejection on the wire: its status, its contract code and what it tells the
/// client (three tables, one per part).
fn rejection(r: Rejection) -> ApiError {
    ApiError::new(rejection_status(r), rejection_code(r), rejection_message(r))
}

fn rejection_status(r: Rejection) -> StatusCode {
    use Rejection as R;
    match r {
        R::ConversationMismatch | R::RetryMessageNotFound => StatusCode::NOT_FOUND,
        R::ConversationNotOngoing
        | R::ConversationBusy
        | R::SourceDuplicate
        | R::AgentNotTrained
        | R::ConversationNotTakenOver => StatusCode::CONFLICT,
        R::CreditsExhausted | R::AgentCreditsExhausted => StatusCode::PAYMENT_REQUIRED,
        R::RetryNoUserMessage => StatusCode::BAD_REQUEST,
        R::MessageNotAssistant
        | R::SourceSizeLimit
        | R::StorageLimit
        | R::DatasetStorageLimit
        | R::TicketInvalidStatus
        | R::TicketTeamNotFound
        | R::TicketTeamMemberNotFound
        | R::TeamMemberNotFound
        | R::MessageContentNotRenderable => StatusCode::UNPROCESSABLE_ENTITY,
        R::ModelBusy | R::ReaderBusy => StatusCode::SERVICE_UNAVAILABLE,
        R::PlanFeatureNotAvailable | R::AgentLimit => StatusCode::FORBIDDEN,
        R::TooManyRuns
        | R::TooManyFollowers
        | R::TooManyWaits
        | R::TooManyReads
        | R::TooManyTests => StatusCode::TOO_MANY_REQUESTS,
    }
}

fn rejection_code(r: Rejection) -> &'static str {
    use Rejection as R;
    match r {
        R::ConversationMismatch => codes::CHAT_CONVERSATION_MISMATCH,
        R::ConversationNotOngoing => codes::CHAT_CONVERSATION_NOT_ONGOING,
        R::ConversationBusy => codes::CHAT_CONVERSATION_BUSY,
        R::CreditsExhausted => codes::CHAT_CREDITS_EXHAUSTED,
        R::AgentCreditsExhausted => codes::CHAT_AGENT_CREDITS_EXHAUSTED,
        R::RetryMessageNotFound => codes::CHAT_RETRY_MESSAGE_NOT_FOUND,
        R::RetryNoUserMessage => codes::CHAT_RETRY_NO_USER_MESSAGE,
        R::MessageNotAssistant => codes::RESOURCE_MESSAGE_NOT_ASSISTANT,
        R::ModelBusy => codes::CHAT_MODEL_BUSY,
        R::SourceDuplicate => codes::SOURCE_DUPLICATE,
        R::SourceSizeLimit => codes::SOURCE_SIZE_LIMIT_EXCEEDED,
        R::StorageLimit | R::DatasetStorageLimit => codes::STORAGE_LIMIT_EXCEEDED,
        R::AgentLimit => codes::AGENT_LIMIT_REACHED,
        R::AgentNotTrained => codes::AGENT_NOT_TRAINED,
        R::PlanFeatureNotAvailable => codes::PLAN_FEATURE_NOT_AVAILABLE,
        R::TooManyRuns => codes::CRAWL_RUNS_LIMIT_REACHED,
        R::TooManyFollowers | R::TooManyWaits | R::TooManyReads | R::TooManyTests => {
            codes::RATE_LIMIT_TOO_MANY_REQUESTS
        }
        R::TicketInvalidStatus => codes::TICKET_INVALID_STATUS,
        R::TicketTeamNotFound => codes::TICKET_TEAM_NOT_FOUND,
        R::TicketTeamMemberNotFound => codes::TICKET_TEAM_MEMBER_NOT_FOUND,
        R::TeamMemberNotFound => codes::TEAM_MEMBER_NOT_FOUND,
        R::ConversationNotTakenOver => codes::CONVERSATION_NOT_TAKEN_OVER,
        R::MessageContentNotRenderable => codes::MESSAGE_CONTENT_NOT_RENDERABLE,
        R::ReaderBusy => codes::SERVICE_UNAVAILABLE,
    }
}

fn rejection_message(r: Rejection) -> &'static str {
    use Rejection as R;
    match r {
        R::ConversationMismatch => "The conversation belongs to another agent",
        R::ConversationNotOngoing => "The conversation has ended or was taken over",
        R::ConversationBusy => {
            "Another message of this conversation is being answered; retry when it finishes"
        }
        R::CreditsExhausted => "Message limit reached",
        R::AgentCreditsExhausted => "The agent has reached its credit limit",
        R::RetryMessageNotFound => "Message not found in conversation",
        R::RetryNoUserMessage => "There is no user message before the target message",
        R::MessageNotAssistant => "Only assistant messages support metadata updates",
        R::ModelBusy => "The model is busy, please try again shortly",
        R::SourceDuplicate => "A source with this content or URL and type already exists",
        R::SourceSizeLimit => "Chatbot storage limit exceeded",
        R::StorageLimit => {
            "The workspace's key-value storage is full for its plan; delete records first"
        }
        R::DatasetStorageLimit => {
            "The workspace's run datasets are full for its plan; delete runs it no longer needs (DELETE /v2/actor-runs/{runId})"
        }
        R::AgentLimit => "The workspace has as many agents as its plan allows",
        R::AgentNotTrained => {
            "Agent has not been trained yet. Train the agent before enabling auto-retrain."
        }
        R::PlanFeatureNotAvailable => "Your plan does not include this feature",
        R::TooManyRuns => {
            "The workspace has as many crawler runs going as it may; wait for one to finish"
        }
        R::TooManyWaits => {
            "The workspace is waiting on as many runs at once as it may; wait without waitForFinish, or retry"
        }
        R::TooManyFollowers => {
            "The workspace follows as many run logs at once as it may; close one first"
        }
        R::TooManyTests => {
            "The workspace is testing as many webhooks at once as it may; wait for one to answer"
        }
        R::TooManyReads => {
            "The workspace reads as many datasets at once as it may; finish reading one first, or retry"
        }
        R::TicketInvalidStatus => "The requested status could not be applied",
        R::TicketTeamNotFound => "The requested team could not be found",
        R::TicketTeamMemberNotFound => "The requested assignee could not be found",
        R::TeamMemberNotFound => "No team member matches the provided author",
        R::ConversationNotTakenOver => "The linked conversation is not taken over",
        R::MessageContentNotRenderable => "The message content renders to nothing",
        R::ReaderBusy => "The server is reading too many files at once; try again shortly",
    }
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
