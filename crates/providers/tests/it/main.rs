//! Integration tests for the hosted providers, each against a local server that
//! speaks that provider's exact wire format (captured SSE transcripts in
//! `fixtures/`). One binary, so the test servers and clients link once.

mod anthropic;
mod embeddings;
mod openai;
mod support;
