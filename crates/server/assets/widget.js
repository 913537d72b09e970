// The embeddable chat widget (filled in by the next commit): it talks to
// /widget/v1/agents/{agentId}/config and /widget/v1/agents/{agentId}/chat.
