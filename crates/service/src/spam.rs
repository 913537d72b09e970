//! Spam detection (`spamSettings`): before an agent answers a widget or API
//! message, the agent's own model classifies it with the agent's spam prompt. A
//! message judged spam is kept, flagged, and its conversation paused: it is never
//! answered and costs no credits.

use std::time::Duration;

use agentbase_core::agent_settings::SpamSettings;
use agentbase_core::model::{ChatMessage, ChatRequest, ModelEvent, Role};
use futures_util::StreamExt;

use crate::chat::Conversations;
use crate::models::ModelEntry;

/// The classifier's answer is a word or two; a model that rambles is cut here.
const VERDICT_TOKENS: u32 = 8;
/// A classification that takes longer lets the message through (fail open: a
/// slow model must not silence every visitor).
const CLASSIFY_TIMEOUT: Duration = Duration::from_secs(20);

/// The classification prompt: the operator's description of spam, then the rule
/// for the answer. The message itself goes in as the user turn (data, never
/// instructions).
pub fn classifier_prompt(settings: &SpamSettings) -> String {
    let described = settings.prompt.trim();
    let described = if described.is_empty() {
        "Spam is unsolicited advertising, scams, phishing, gibberish or abuse that is not a genuine question for this assistant."
    } else {
        described
    };
    format!(
        "You classify messages sent to a customer-facing chat assistant.\n{described}\n\
         Reply with exactly one word: SPAM if the user's message is spam, otherwise NOT_SPAM."
    )
}

/// Whether the classifier's reply says spam.
pub fn verdict_is_spam(reply: &str) -> bool {
    let word: String = reply
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic() || *c == '_')
        .collect();
    word.eq_ignore_ascii_case("spam")
}

impl Conversations {
    /// Classifies `text` with the agent's model; model failures count as not spam.
    pub(crate) async fn is_spam(
        &self,
        entry: &ModelEntry,
        workspace: &str,
        settings: &SpamSettings,
        text: &str,
    ) -> bool {
        let request = ChatRequest {
            upstream_model: entry.upstream.clone(),
            messages: vec![
                ChatMessage::text(Role::System, classifier_prompt(settings)),
                ChatMessage::text(Role::User, text.to_owned()),
            ],
            tools: Vec::new(),
            temperature: 0.0,
            max_tokens: VERDICT_TOKENS,
        };
        // The check is a model call like a turn's, so it takes the workspace's
        // place too (before the timeout starts: waiting is not the model failing).
        let _turn = entry.turn_for(workspace).await;
        let mut stream = entry.model.stream(request);
        let collect = async {
            let mut reply = String::new();
            while let Some(event) = stream.next().await {
                match event {
                    Ok(ModelEvent::TextDelta(t)) => reply.push_str(&t),
                    Ok(ModelEvent::Finish { .. }) => break,
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(reply)
        };
        match tokio::time::timeout(CLASSIFY_TIMEOUT, collect).await {
            Ok(Ok(reply)) => verdict_is_spam(&reply),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "spam check failed; answering the message");
                false
            }
            Err(_) => {
                tracing::warn!("spam check timed out; answering the message");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_spam_verdict_counts() {
        assert!(verdict_is_spam("SPAM"));
        assert!(verdict_is_spam(" spam."));
        assert!(!verdict_is_spam("NOT_SPAM"));
        assert!(!verdict_is_spam("Spammy? No."));
        assert!(!verdict_is_spam(""));
    }
}
