//! The scripted model: deterministic answers for tests and benchmarks, steered by
//! directives in the last user message, so black-box clients (the Python and Node
//! compatibility tests) can ask for any behaviour without configuration.
//!
//! - default: answers `Echo: <message>`, one word per delta;
//! - `[[reply:TEXT]]` answers TEXT;
//! - `[[tool:NAME {json}]]` calls tool NAME with that input (several allowed) and
//!   finishes with `tool-calls`;
//! - `[[delay:MS]]` waits MS milliseconds before each delta;
//! - `[[fail:N]]` fails after N deltas (a mid-stream model failure);
//! - `[[system]]` answers with the system prompt it was given (to see the
//!   knowledge retrieval put there).
//!
//! After tool results it answers `Tool NAME returned OUTPUT.` for each result.

use std::time::Duration;

use agentbase_core::model::{
    ChatMessage, ChatModel, ChatRequest, FinishReason, ModelError, ModelEvent, ModelStream, Role,
    Usage,
};
use futures_util::stream;

#[derive(Debug, Default, Clone)]
pub struct ScriptedModel;

#[derive(Debug, Default, PartialEq)]
struct Script {
    reply: Option<String>,
    tools: Vec<(String, String)>,
    delay_ms: u64,
    fail_after: Option<usize>,
    system: bool,
    rest: String,
}

fn parse(message: &str) -> Script {
    let mut script = Script::default();
    let mut rest = String::new();
    let mut s = message;
    while let Some(start) = s.find("[[") {
        rest.push_str(&s[..start]);
        let Some(len) = s[start..].find("]]") else {
            rest.push_str(&s[start..]);
            s = "";
            break;
        };
        let directive = &s[start + 2..start + len];
        if let Some(text) = directive.strip_prefix("reply:") {
            script.reply = Some(text.to_owned());
        } else if let Some(spec) = directive.strip_prefix("tool:") {
            let (name, input) = spec.split_once(' ').unwrap_or((spec, "{}"));
            script
                .tools
                .push((name.trim().to_owned(), input.trim().to_owned()));
        } else if let Some(ms) = directive.strip_prefix("delay:") {
            script.delay_ms = ms.trim().parse().unwrap_or(0);
        } else if let Some(n) = directive.strip_prefix("fail:") {
            script.fail_after = n.trim().parse().ok();
        } else if directive == "system" {
            script.system = true;
        } else {
            rest.push_str(&s[start..start + len + 2]);
        }
        s = &s[start + len + 2..];
    }
    rest.push_str(s);
    script.rest = rest.trim().to_owned();
    script
}

/// Splits text into word-sized deltas that concatenate back to it.
fn deltas(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        current.push(ch);
        if ch == ' ' {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

type Events = Vec<Result<ModelEvent, ModelError>>;

fn text_events(text: &str) -> Events {
    deltas(text)
        .into_iter()
        .map(|d| Ok(ModelEvent::TextDelta(d)))
        .collect()
}

/// After tool results: one sentence per result, in the order they came.
fn tool_results_reply(messages: &[ChatMessage]) -> Events {
    let results: Vec<String> = messages
        .iter()
        .rev()
        .take_while(|m| m.role == Role::Tool)
        .map(|m| {
            format!(
                "Tool {} returned {}.",
                m.tool_name.clone().unwrap_or_default(),
                m.content
            )
        })
        .collect();
    text_events(&results.into_iter().rev().collect::<Vec<_>>().join(" "))
}

/// The reply the script in the user's message asks for: its text (failing after
/// `fail_after` pieces), then its tool calls, each call's arguments in two deltas.
fn scripted_reply(script: &Script, messages: &[ChatMessage]) -> (Events, FinishReason) {
    let system = messages
        .iter()
        .find(|m| m.role == Role::System)
        .map(|m| m.content.clone())
        .unwrap_or_default();
    let text = match (&script.reply, script.system) {
        (Some(r), _) => r.clone(),
        (None, true) => system,
        (None, false) => format!("Echo: {}", script.rest),
    };
    let mut events = Vec::new();
    let mut pieces = deltas(&text);
    if !script.tools.is_empty() && script.reply.is_none() {
        pieces.clear();
    }
    for (i, piece) in pieces.into_iter().enumerate() {
        if script.fail_after == Some(i) {
            events.push(Err(ModelError::Failed("scripted failure".into())));
            break;
        }
        events.push(Ok(ModelEvent::TextDelta(piece)));
    }
    if script.fail_after.is_some_and(|n| events.len() <= n) && events.iter().all(Result::is_ok) {
        events.push(Err(ModelError::Failed("scripted failure".into())));
    }
    let mut finish = FinishReason::Stop;
    for (index, (name, input)) in script.tools.iter().enumerate() {
        events.push(Ok(ModelEvent::ToolCallStart {
            index,
            id: agentbase_core::ids::tool_call_id(),
            name: name.clone(),
        }));
        let mid = input.len() / 2;
        let split = (0..=mid)
            .rev()
            .find(|i| input.is_char_boundary(*i))
            .unwrap_or(0);
        for part in [&input[..split], &input[split..]] {
            if !part.is_empty() {
                events.push(Ok(ModelEvent::ToolCallDelta {
                    index,
                    arguments: part.to_owned(),
                }));
            }
        }
        events.push(Ok(ModelEvent::ToolCallEnd { index }));
        finish = FinishReason::ToolCalls;
    }
    (events, finish)
}

impl ChatModel for ScriptedModel {
    fn stream(&self, request: ChatRequest) -> ModelStream {
        let mut delay_ms = 0;
        let (mut events, finish) = match request.messages.last() {
            Some(m) if m.role == Role::Tool => {
                (tool_results_reply(&request.messages), FinishReason::Stop)
            }
            Some(m) => {
                let script = parse(&m.content);
                delay_ms = script.delay_ms;
                scripted_reply(&script, &request.messages)
            }
            None => (text_events("Hello!"), FinishReason::Stop),
        };
        if events.iter().all(Result::is_ok) {
            let completion = events.len() as u32;
            events.push(Ok(ModelEvent::Finish {
                reason: finish,
                usage: Usage {
                    prompt_tokens: 0,
                    completion_tokens: completion,
                },
            }));
        }
        let delay = Duration::from_millis(delay_ms);
        Box::pin(stream::unfold(
            events.into_iter(),
            move |mut it| async move {
                let next = it.next()?;
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Some((next, it))
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_are_parsed_and_removed_from_the_text() {
        let s = parse(r#"hi [[delay:5]] there [[tool:lookup {"id": 1}]] [[fail:2]] [[unknown]]"#);
        assert_eq!(s.delay_ms, 5);
        assert_eq!(
            s.tools,
            vec![("lookup".to_owned(), r#"{"id": 1}"#.to_owned())]
        );
        assert_eq!(s.fail_after, Some(2));
        assert_eq!(s.rest, "hi  there   [[unknown]]");
    }

    #[test]
    fn deltas_concatenate_to_the_text() {
        let text = "Echo: héllo wörld  end";
        assert_eq!(deltas(text).concat(), text);
        assert_eq!(deltas(text).len(), 5);
    }
}
