-- Per-agent "extract or quote" setting for grounded answers: 1 on, 0 off, NULL
-- automatic (on for models under 1B parameters). See service/src/grounding.rs.
ALTER TABLE agents ADD COLUMN quote_fallback BIGINT;
