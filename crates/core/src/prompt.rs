//! Prompt assembly: the agent's instructions, then the conversation as model
//! messages (tool calls and their results included), trimmed from the oldest end
//! so prompt plus answer fit the model's context window. Never an overflow error.

use crate::conversation::{Message, MessageRole, Part, ToolCallRecord, ToolCallStatus};
use crate::model::{ChatMessage, Role, ToolCall};

/// What a result-less tool call (abandoned by the client) shows the model, so every
/// call still has an answer (OpenAI rejects unanswered calls).
pub const NO_TOOL_RESULT: &str = "(no result was submitted)";

/// A piece of knowledge given to the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnowledgeEntry<'a> {
    pub source_id: &'a str,
    pub title: &'a str,
    pub url: Option<&'a str>,
    pub heading: &'a str,
    pub text: &'a str,
}

/// What the model is told when the agent has knowledge but none of it is
/// relevant: say so, do not invent.
pub const NO_KNOWLEDGE: &str = "No information relevant to the user's question was found in \
the knowledge base. Tell the user you could not find this in your knowledge base and do not \
make up an answer.";

/// The system prompt: the agent's instructions, then (for agents with knowledge)
/// the retrieved chunks, numbered, each with its source id and title, or the
/// instruction to admit that nothing relevant was found.
pub fn with_knowledge(instructions: &str, knowledge: Option<&[KnowledgeEntry<'_>]>) -> String {
    let Some(entries) = knowledge else {
        return instructions.to_owned();
    };
    let mut out = String::from(instructions.trim_end());
    out.push_str("\n\n");
    if entries.is_empty() {
        out.push_str(NO_KNOWLEDGE);
        return out;
    }
    out.push_str(
        "Answer from the knowledge below. If it does not contain the answer, say that you do \
not know rather than guessing.\n\nKnowledge:",
    );
    for (i, e) in entries.iter().enumerate() {
        out.push_str(&format!(
            "\n\n[{}] source {} — {}",
            i + 1,
            e.source_id,
            e.title
        ));
        if !e.heading.is_empty() {
            out.push_str(&format!(" — {}", e.heading));
        }
        if let Some(url) = e.url {
            out.push_str(&format!(" ({url})"));
        }
        out.push('\n');
        out.push_str(e.text.trim());
    }
    out
}

/// For small models: the knowledge written into the user's message, right before
/// the question it is for, with a one-line task. A 135M-parameter model follows an
/// instruction next to the question far better than one at the top of a long
/// system prompt. The entries keep their numbers, so a citation `[1]` is the first.
pub fn knowledge_in_question(question: &str, entries: &[KnowledgeEntry<'_>]) -> String {
    let mut out = String::from("Knowledge:");
    for (i, e) in entries.iter().enumerate() {
        out.push_str(&format!("\n\n[{}] {}", i + 1, e.title));
        if !e.heading.is_empty() {
            out.push_str(&format!(" — {}", e.heading));
        }
        out.push('\n');
        out.push_str(e.text.trim());
    }
    out.push_str(&format!(
        "\n\nQuestion: {}\n\n{SMALL_MODEL_TASK}",
        question.trim()
    ));
    out
}

/// The task line of [`knowledge_in_question`].
pub const SMALL_MODEL_TASK: &str = "Answer the question with the fact from the knowledge \
above, in one sentence. If the knowledge does not answer it, say \"I don't know\".";

/// The conversation as model messages, in order.
pub fn history(messages: &[Message], tool_calls: &[ToolCallRecord]) -> Vec<ChatMessage> {
    let mut out = Vec::new();
    for m in messages {
        match m.role {
            MessageRole::User => out.push(ChatMessage::text(Role::User, m.text())),
            MessageRole::Assistant => {
                let calls: Vec<ToolCall> = m
                    .parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::ToolCall {
                            tool_call_id,
                            tool_name,
                            input,
                        } => Some(ToolCall {
                            id: tool_call_id.clone(),
                            name: tool_name.clone(),
                            arguments: input.to_string(),
                        }),
                        _ => None,
                    })
                    .collect();
                let mut msg = ChatMessage::text(Role::Assistant, m.text());
                msg.tool_calls = calls.clone();
                out.push(msg);
                for call in calls {
                    let result = tool_calls
                        .iter()
                        .find(|r| r.id == call.id && r.status == ToolCallStatus::Resolved)
                        .and_then(|r| r.output.as_ref())
                        .map_or_else(
                            || NO_TOOL_RESULT.to_owned(),
                            |o| match o {
                                serde_json::Value::String(s) => s.clone(),
                                other => other.to_string(),
                            },
                        );
                    let mut t = ChatMessage::text(Role::Tool, result);
                    t.tool_call_id = Some(call.id);
                    t.tool_name = Some(call.name);
                    out.push(t);
                }
            }
        }
    }
    out
}

/// Drops the oldest messages (an assistant message together with its tool
/// results) until `system + history` fits `budget` tokens. The newest message is
/// always kept, cut from its start if it alone is too long.
pub fn fit(
    system: Option<ChatMessage>,
    mut history: Vec<ChatMessage>,
    budget: usize,
    count: &dyn Fn(&str) -> usize,
) -> Vec<ChatMessage> {
    const PER_MESSAGE: usize = 4;
    let cost = |m: &ChatMessage| {
        count(&m.content)
            + PER_MESSAGE
            + m.tool_calls
                .iter()
                .map(|c| count(&c.arguments) + count(&c.name))
                .sum::<usize>()
    };
    let system_cost = system.as_ref().map_or(0, cost);
    let mut total: usize = history.iter().map(cost).sum::<usize>() + system_cost;
    while total > budget && history.len() > 1 {
        // Remove the first message and any tool results that answered it.
        let first = history.remove(0);
        total -= cost(&first);
        while history.len() > 1 && history[0].role == Role::Tool {
            total -= cost(&history.remove(0));
        }
    }
    if total > budget
        && let Some(last) = history.last_mut()
    {
        let allowed = budget.saturating_sub(system_cost + PER_MESSAGE).max(1);
        let chars: Vec<char> = last.content.chars().collect();
        // Keep the end of the message: its question is usually last.
        let mut keep = chars.len();
        while keep > 0 && count(&chars[chars.len() - keep..].iter().collect::<String>()) > allowed {
            keep = keep * 3 / 4;
        }
        last.content = chars[chars.len() - keep..].iter().collect();
    }
    system.into_iter().chain(history).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(seq: i64, role: MessageRole, parts: Vec<Part>) -> Message {
        Message {
            id: format!("m{seq}"),
            conversation_id: "c".into(),
            seq,
            role,
            parts,
            created_at: 0,
            feedback: None,
            score: None,
            finish_reason: None,
            credits: 0.0,
            sources: Vec::new(),
            spam: false,
        }
    }

    fn entry<'a>(source_id: &'a str, text: &'a str, url: Option<&'a str>) -> KnowledgeEntry<'a> {
        KnowledgeEntry {
            source_id,
            title: "Refunds",
            url,
            heading: "Policy > Exceptions",
            text,
        }
    }

    #[test]
    fn knowledge_goes_into_the_system_prompt_numbered_with_its_source() {
        assert_eq!(with_knowledge("Be brief.", None), "Be brief.");
        let none = with_knowledge("Be brief.", Some(&[]));
        assert_eq!(none, format!("Be brief.\n\n{NO_KNOWLEDGE}"));
        let two = with_knowledge(
            "Be brief.",
            Some(&[
                entry("src_1", "Gift cards cannot be refunded.", None),
                entry(
                    "src_2",
                    "Refunds take five days.",
                    Some("https://shop.example/refunds"),
                ),
            ]),
        );
        assert!(two.starts_with("Be brief.\n\nAnswer from the knowledge below."));
        assert!(two.contains(
            "[1] source src_1 — Refunds — Policy > Exceptions\nGift cards cannot be refunded."
        ));
        assert!(two.contains("[2] source src_2 — Refunds — Policy > Exceptions (https://shop.example/refunds)\nRefunds take five days."));
    }

    fn text(t: &str) -> Part {
        Part::Text { text: t.into() }
    }

    #[test]
    fn tool_calls_are_followed_by_their_results_or_a_placeholder() {
        let messages = vec![
            msg(1, MessageRole::User, vec![text("order?")]),
            msg(
                2,
                MessageRole::Assistant,
                vec![
                    text("Looking."),
                    Part::ToolCall {
                        tool_call_id: "a".into(),
                        tool_name: "lookup".into(),
                        input: json!({"id": 1}),
                    },
                    Part::ToolCall {
                        tool_call_id: "b".into(),
                        tool_name: "other".into(),
                        input: json!({}),
                    },
                ],
            ),
        ];
        let records = vec![ToolCallRecord {
            id: "a".into(),
            conversation_id: "c".into(),
            message_id: "m2".into(),
            name: "lookup".into(),
            input: json!({"id": 1}),
            status: ToolCallStatus::Resolved,
            output: Some(json!({"status": "shipped"})),
            created_at: 0,
            expires_at: 0,
        }];
        let h = history(&messages, &records);
        let roles: Vec<_> = h.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::User, Role::Assistant, Role::Tool, Role::Tool]);
        assert_eq!(h[1].tool_calls.len(), 2);
        assert_eq!(h[2].content, r#"{"status":"shipped"}"#);
        assert_eq!(h[2].tool_call_id.as_deref(), Some("a"));
        assert_eq!(h[3].content, NO_TOOL_RESULT);
    }

    #[test]
    fn long_histories_are_trimmed_from_the_oldest_end_never_failing() {
        let count = |s: &str| s.split_whitespace().count();
        let system = Some(ChatMessage::text(Role::System, "be nice"));
        let history: Vec<_> = (0..100)
            .map(|i| {
                ChatMessage::text(
                    if i % 2 == 0 {
                        Role::User
                    } else {
                        Role::Assistant
                    },
                    format!("message number {i} with words"),
                )
            })
            .collect();
        let fitted = fit(system, history, 60, &count);
        assert_eq!(fitted[0].role, Role::System);
        assert_eq!(
            fitted.last().unwrap().content,
            "message number 99 with words"
        );
        let total: usize = fitted.iter().map(|m| count(&m.content) + 4).sum();
        assert!(total <= 60, "{total}");
        assert!(fitted.len() > 3);

        let huge = vec![ChatMessage::text(
            Role::User,
            "word ".repeat(10_000) + "question?",
        )];
        let fitted = fit(None, huge, 100, &count);
        assert!(count(&fitted[0].content) <= 96);
        assert!(fitted[0].content.ends_with("question?"));
    }

    #[test]
    fn a_dropped_tool_call_takes_its_results_with_it() {
        let count = |s: &str| s.len();
        let mut call = ChatMessage::text(Role::Assistant, "x".repeat(50));
        call.tool_calls.push(ToolCall {
            id: "a".into(),
            name: "t".into(),
            arguments: "{}".into(),
        });
        let mut result = ChatMessage::text(Role::Tool, "r".repeat(50));
        result.tool_call_id = Some("a".into());
        let history = vec![call, result, ChatMessage::text(Role::User, "now")];
        let fitted = fit(None, history, 20, &count);
        assert_eq!(fitted.len(), 1);
        assert_eq!(fitted[0].content, "now");
    }
}
