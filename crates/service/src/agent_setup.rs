//! What creating an agent beyond plain CRUD reports: the steps that could not be
//! taken (`Knowledge::create_agent_from`, `Knowledge::clone_agent`).

use agentbase_core::Agent;

/// A follow-up step of agent creation that did not happen (the contract's
/// `pendingSteps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingStep {
    AddSource,
    TrainAgent,
}

impl PendingStep {
    pub fn as_str(self) -> &'static str {
        match self {
            PendingStep::AddSource => "ADD_SOURCE",
            PendingStep::TrainAgent => "TRAIN_AGENT",
        }
    }
}

/// A new agent and the steps that could not be taken for it.
#[derive(Debug, Clone)]
pub struct AgentCreated {
    pub agent: Agent,
    pub pending_steps: Vec<PendingStep>,
}
