-- This month's credit spend per agent, kept beside the agent so reading an agent
-- is one query; the ledger stays the truth (limits are checked against it).
ALTER TABLE agents ADD COLUMN credits_month BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN credits_used DOUBLE PRECISION NOT NULL DEFAULT 0;
