//! The one error type of the domain. Variants are by meaning; the HTTP layer maps
//! each exhaustively onto a status and a Chatbase error code.

use std::collections::BTreeMap;

/// Field path → what is wrong with it; becomes the envelope's `details`.
pub type FieldErrors = BTreeMap<String, String>;

/// What kind of thing was not found; decides the contract's 404 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Agent,
    Workspace,
    ApiKey,
    Conversation,
    Message,
    ToolCall,
    Source,
    /// An actor other than the Website Content Crawler.
    Actor,
    /// A crawler run or its dataset.
    Run,
    /// An agent's webhook endpoint.
    Webhook,
    /// A contact of an agent (v1 contacts API).
    Contact,
    /// A custom attribute of an agent's contact schema.
    CustomAttribute,
    /// A helpdesk ticket (by its number).
    Ticket,
}

/// A request refused by a rule of the chat contract; each has its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The conversation belongs to another agent of the workspace.
    ConversationMismatch,
    /// The conversation has ended or was taken over.
    ConversationNotOngoing,
    /// Another turn of this conversation is running.
    ConversationBusy,
    /// The workspace's monthly credits are used up.
    CreditsExhausted,
    /// The agent's `creditLimit` is reached.
    AgentCreditsExhausted,
    RetryMessageNotFound,
    RetryNoUserMessage,
    MessageNotAssistant,
    /// The model cannot take more work right now.
    ModelBusy,
    /// Every file reader is busy: the upload can be sent again shortly.
    ReaderBusy,
    /// A source with the same kind and content (or URL) exists.
    SourceDuplicate,
    /// The agent's sources would exceed the plan's storage.
    SourceSizeLimit,
    /// Auto-retrain needs a trained agent.
    AgentNotTrained,
    /// The workspace's plan does not include this feature.
    PlanFeatureNotAvailable,
    /// The workspace has as many crawler runs going as it may.
    TooManyRuns,
    /// The workspace follows as many run logs at once as it may.
    TooManyFollowers,
    /// The workspace waits on as many runs at once (`waitForFinish`, synchronous
    /// runs) as it may.
    TooManyWaits,
    /// The workspace reads as many datasets at once as it may.
    TooManyReads,
    /// The workspace has as many webhook tests going as it may.
    TooManyTests,
    /// The workspace's key-value records hold as many bytes as its plan allows.
    StorageLimit,
    /// The workspace's run datasets hold as many bytes as its plan allows.
    DatasetStorageLimit,
    /// The workspace has as many agents as its plan allows.
    AgentLimit,
    /// Helpdesk: the statusId is not one of the agent's statuses.
    TicketInvalidStatus,
    /// Helpdesk: the teamId is not one of the agent's teams.
    TicketTeamNotFound,
    /// Helpdesk: neither assignee field names a member of the workspace.
    TicketTeamMemberNotFound,
    /// Helpdesk: a reply's author is not a member of the workspace.
    TeamMemberNotFound,
    /// Helpdesk: a reply to a ticket whose live conversation the AI still answers.
    ConversationNotTakenOver,
    /// Helpdesk: a reply whose text renders to nothing.
    MessageContentNotRenderable,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0:?} not found")]
    NotFound(Resource),
    #[error("invalid input: {0:?}")]
    Invalid(FieldErrors),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("rejected: {0:?}")]
    Rejected(Rejection),
    /// The caller is known but its role does not allow this (a workspace member
    /// acting beyond their role); the message says what was refused.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The record could not be read or written; the cause is for logs only.
    #[error("storage error: {0}")]
    Storage(String),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut m = FieldErrors::new();
        m.insert(field.into(), message.into());
        Error::Invalid(m)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
