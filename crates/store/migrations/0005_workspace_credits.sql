-- This month's credit spend per workspace, kept with the workspace (as for agents)
-- so the allowance check before a turn is one row read, not a SUM over the month.
ALTER TABLE workspaces ADD COLUMN credits_month BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workspaces ADD COLUMN credits_used DOUBLE PRECISION NOT NULL DEFAULT 0;

-- Reading a conversation's messages merges its tool calls: look them up by
-- conversation, not by scanning the table.
CREATE INDEX tool_calls_by_conversation ON tool_calls (conversation_id);
