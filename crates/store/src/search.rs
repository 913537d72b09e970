//! Conversation search (`GET /agents/{id}/conversations/search`): filters that
//! combine with AND, each a list of values combined with OR, plus a free-text
//! query over titles and messages; most recently active first.

use agentbase_core::{Cursor, Millis, Result};

use crate::chat::{Arg, CONVERSATION_COLUMNS, Where, conversation, keyset_page};
use crate::{Page, Store};

/// What a search asks for; `None` is "any".
#[derive(Debug, Clone, Default)]
pub struct ConversationSearch {
    /// Free text, matched case-insensitively in titles and message text.
    pub query: Option<String>,
    pub sources: Option<Vec<String>>,
    pub user_ids: Option<Vec<String>>,
    pub statuses: Option<Vec<String>>,
    /// `positive` / `negative`: a message of the conversation has that feedback.
    pub feedback: Option<Vec<String>>,
    /// Tool names the assistant called, and (scoped to them) the calls' statuses.
    pub tools: Option<Vec<String>>,
    pub tool_statuses: Option<Vec<String>>,
    pub created_from: Option<Millis>,
    pub created_to: Option<Millis>,
    pub updated_from: Option<Millis>,
    pub updated_to: Option<Millis>,
    /// A filter nothing here can match (sentiment, topics, voice, escalation,
    /// procedures: agentbase records none of them).
    pub nothing: bool,
}

fn one_of(w: &mut Where, column: &str, values: &[String]) {
    let marks: Vec<String> = values.iter().map(|v| w.arg(Arg::Text(v.clone()))).collect();
    w.push(if marks.is_empty() {
        "1 = 0".to_owned()
    } else {
        format!("{column} IN ({})", marks.join(", "))
    });
}

/// `LIKE` with the query's own `%`, `_` and `\` taken literally.
fn like_pattern(q: &str) -> String {
    let mut out = String::from("%");
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Store {
    pub async fn search_conversations(
        &self,
        agent_id: &str,
        s: &ConversationSearch,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<agentbase_core::conversation::Conversation>> {
        let mut w = Where::new();
        let p = w.arg(Arg::Text(agent_id.to_owned()));
        w.push(format!("agent_id = {p}"));
        if s.nothing {
            w.push("1 = 0".to_owned());
        }
        if let Some(v) = &s.sources {
            one_of(&mut w, "source", v);
        }
        if let Some(v) = &s.user_ids {
            one_of(&mut w, "user_id", v);
        }
        if let Some(v) = &s.statuses {
            one_of(&mut w, "status", v);
        }
        for (bound, col, op) in [
            (s.created_from, "created_at", ">="),
            (s.created_to, "created_at", "<="),
            (s.updated_from, "updated_at", ">="),
            (s.updated_to, "updated_at", "<="),
        ] {
            if let Some(t) = bound {
                let p = w.arg(Arg::Int(t));
                w.push(format!("{col} {op} {p}"));
            }
        }
        if let Some(v) = &s.feedback {
            let mut inner = Vec::new();
            for f in v {
                inner.push(w.arg(Arg::Text(f.clone())));
            }
            w.push(format!(
                "EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = conversations.id \
                 AND m.feedback IN ({}))",
                if inner.is_empty() {
                    "NULL".to_owned()
                } else {
                    inner.join(", ")
                }
            ));
        }
        if s.tools.is_some() || s.tool_statuses.is_some() {
            let mut clause = String::from(
                "EXISTS (SELECT 1 FROM tool_calls t WHERE t.conversation_id = conversations.id",
            );
            for (col, values) in [("t.name", &s.tools), ("t.status", &s.tool_statuses)] {
                if let Some(values) = values {
                    let marks: Vec<String> =
                        values.iter().map(|v| w.arg(Arg::Text(v.clone()))).collect();
                    clause.push_str(&format!(
                        " AND {col} IN ({})",
                        if marks.is_empty() {
                            "NULL".to_owned()
                        } else {
                            marks.join(", ")
                        }
                    ));
                }
            }
            clause.push(')');
            w.push(clause);
        }
        if let Some(q) = s.query.as_deref().filter(|q| !q.trim().is_empty()) {
            let a = w.arg(Arg::Text(like_pattern(q.trim())));
            let b = w.arg(Arg::Text(like_pattern(q.trim())));
            w.push(format!(
                "(LOWER(COALESCE(title, '')) LIKE {a} ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m \
                 WHERE m.conversation_id = conversations.id AND LOWER(m.parts) LIKE {b} ESCAPE '\\'))"
            ));
        }
        keyset_page(
            &self.pool,
            ("conversations", CONVERSATION_COLUMNS),
            w,
            "updated_at",
            after,
            limit,
            conversation,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_pattern("50%_Off"), "%50\\%\\_off%");
    }
}
