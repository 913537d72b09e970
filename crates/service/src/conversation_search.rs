//! Conversation search: the record's filters, plus a snippet around the first
//! message that matches the free-text query.

use agentbase_core::conversation::{Conversation, MessageRole};
use agentbase_core::{Cursor, Result};
use agentbase_store::{ConversationSearch, Page};

use crate::Principal;
use crate::chat::Conversations;

/// Characters of context kept on each side of a hit.
const CONTEXT_CHARS: usize = 60;

/// The matching message's speaker and its text cut around the hits.
#[derive(Debug, Clone, PartialEq)]
pub struct Snippet {
    pub speaker: &'static str,
    /// (text, is a hit), in order; joined they give the snippet text.
    pub highlights: Vec<(String, bool)>,
}

/// `text` split into hits of `query` (case-insensitive) and the text between,
/// trimmed to [`CONTEXT_CHARS`] around the first hit; `None` without a hit.
pub fn snippet_of(text: &str, query: &str) -> Option<Vec<(String, bool)>> {
    let q: Vec<char> = query.to_lowercase().chars().collect();
    if q.is_empty() {
        return None;
    }
    let chars: Vec<char> = text.chars().collect();
    let lower: Vec<char> = chars
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let mut hits = Vec::new();
    let mut i = 0;
    while i + q.len() <= lower.len() {
        if lower[i..i + q.len()] == q[..] {
            hits.push(i);
            i += q.len();
        } else {
            i += 1;
        }
    }
    let first = *hits.first()?;
    let start = first.saturating_sub(CONTEXT_CHARS);
    let end = (first + q.len() + CONTEXT_CHARS).min(chars.len());
    let mut out = Vec::new();
    let mut at = start;
    for h in hits.into_iter().filter(|h| *h + q.len() <= end) {
        if h > at {
            out.push((chars[at..h].iter().collect(), false));
        }
        out.push((chars[h..h + q.len()].iter().collect(), true));
        at = h + q.len();
    }
    if at < end {
        out.push((chars[at..end].iter().collect(), false));
    }
    Some(out)
}

impl Conversations {
    /// `GET /agents/{id}/conversations/search`: a page of conversations, most
    /// recently active first, each with a snippet when `query` matched a message.
    pub async fn search_conversations(
        &self,
        p: &Principal,
        agent_id: &str,
        search: &ConversationSearch,
        cursor: Option<&Cursor>,
        limit: u32,
    ) -> Result<(Page<Conversation>, Vec<Option<Snippet>>)> {
        let agent = self.agents.get(&p.workspace_id, agent_id).await?;
        let page = self
            .store
            .search_conversations(&agent.id, search, cursor, limit)
            .await?;
        let mut snippets = Vec::with_capacity(page.items.len());
        for c in &page.items {
            let snippet = match search
                .query
                .as_deref()
                .map(str::trim)
                .filter(|q| !q.is_empty())
            {
                None => None,
                Some(q) => self.store.messages(&c.id).await?.iter().find_map(|m| {
                    snippet_of(&m.text(), q).map(|highlights| Snippet {
                        speaker: match m.role {
                            MessageRole::User => "user",
                            MessageRole::Assistant => "assistant",
                        },
                        highlights,
                    })
                }),
            };
            snippets.push(snippet);
        }
        Ok((page, snippets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_mark_every_hit_in_the_window() {
        let s = snippet_of("Refunds: a refund takes 5 days", "REFUND").unwrap();
        assert_eq!(
            s,
            vec![
                ("Refund".to_owned(), true),
                ("s: a ".to_owned(), false),
                ("refund".to_owned(), true),
                (" takes 5 days".to_owned(), false)
            ]
        );
        assert_eq!(snippet_of("nothing here", "refund"), None);
    }
}
