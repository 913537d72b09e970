//! Integration tests for agentbase-llm against the real default weights, fetched once
//! per machine into `$AGENTBASE_MODELS_DIR` (default `/var/cache/agentbase-models`).
//! One test binary for the crate, to keep link times down.

mod chat;
mod common;
mod embed;
mod fetch;
