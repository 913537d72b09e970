//! The prompt format for tool calls with local models, and the streaming parser that
//! turns the model's text back into tool-call events.
//!
//! The format is the Hermes/Qwen 2.5 one, which instruction-tuned open models know best:
//!
//! * the tools are listed in the system prompt as JSON objects inside `<tools></tools>`,
//!   followed by the instruction to answer with calls in this shape:
//!
//!   ```text
//!   <tool_call>
//!   {"name": "get_weather", "arguments": {"city": "Paris"}}
//!   </tool_call>
//!   ```
//!
//! * an earlier assistant call is shown to the model in the same shape, and a tool's
//!   result comes back as a user turn holding
//!   `<tool_response>{"name": …, "content": …}</tool_response>`.
//!
//! The parser streams ordinary text as soon as it cannot be the start of
//! `<tool_call>`, and emits `ToolCallStart` → `ToolCallDelta` (the whole arguments
//! object) → `ToolCallEnd` when a call closes. A call whose JSON does not parse is
//! passed through as text rather than dropped. Small models (SmolLM2-135M) rarely
//! follow this format; bigger GGUF models (Qwen 2.5, Llama 3.x) do.

use std::sync::atomic::{AtomicU64, Ordering};

use agentbase_core::model::{ModelEvent, ToolCall, ToolSpec};
use serde_json::{Value, json};

pub const TOOL_CALL_OPEN: &str = "<tool_call>";
pub const TOOL_CALL_CLOSE: &str = "</tool_call>";

/// The system-prompt section that offers `tools` to the model.
pub fn tools_system_prompt(tools: &[ToolSpec]) -> String {
    let mut out = String::from(
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
         You are provided with function signatures within <tools></tools> XML tags:\n<tools>",
    );
    for tool in tools {
        let spec = json!({
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            }
        });
        out.push('\n');
        out.push_str(&spec.to_string());
    }
    out.push_str(
        "\n</tools>\n\nFor each function call, return a json object with function name and arguments \
         within <tool_call></tool_call> XML tags:\n<tool_call>\n\
         {\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>",
    );
    out
}

/// An assistant turn's calls, written as the model would have written them.
pub fn render_tool_calls(calls: &[ToolCall]) -> String {
    calls
        .iter()
        .map(|call| {
            let arguments: Value = serde_json::from_str(&call.arguments)
                .unwrap_or_else(|_| Value::String(call.arguments.clone()));
            let body = json!({ "name": call.name, "arguments": arguments });
            format!("{TOOL_CALL_OPEN}\n{body}\n{TOOL_CALL_CLOSE}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A tool's result, as the content of the user turn that carries it.
pub fn render_tool_result(name: Option<&str>, content: &str) -> String {
    let body = json!({ "name": name.unwrap_or(""), "content": content });
    format!("<tool_response>\n{body}\n</tool_response>")
}

fn next_call_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("call_{nanos:08x}{n:06x}")
}

#[derive(Debug, Default)]
pub struct ToolCallParser {
    pending: String,
    inside: bool,
    calls: usize,
}

impl ToolCallParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether any tool call was emitted (the turn then ends with `ToolCalls`).
    pub fn called_tools(&self) -> bool {
        self.calls > 0
    }

    /// Feeds decoded text; returns the events it completes.
    pub fn push(&mut self, text: &str) -> Vec<ModelEvent> {
        self.pending.push_str(text);
        let mut events = Vec::new();
        loop {
            if self.inside {
                let Some(end) = self.pending.find(TOOL_CALL_CLOSE) else {
                    break;
                };
                let body: String = self.pending[..end].to_owned();
                self.pending.drain(..end + TOOL_CALL_CLOSE.len());
                self.inside = false;
                self.emit_call(&body, &mut events);
            } else if let Some(start) = self.pending.find(TOOL_CALL_OPEN) {
                let before: String = self.pending[..start].to_owned();
                self.emit_text(before, &mut events);
                self.pending.drain(..start + TOOL_CALL_OPEN.len());
                self.inside = true;
            } else {
                // Hold back a tail that could still grow into `<tool_call>`.
                let keep = partial_prefix_len(&self.pending, TOOL_CALL_OPEN);
                let ready: String = self.pending[..self.pending.len() - keep].to_owned();
                self.pending.drain(..ready.len());
                self.emit_text(ready, &mut events);
                break;
            }
        }
        events
    }

    /// Flushes what is left when generation ends. An unclosed call whose JSON is
    /// complete counts (models often stop right after the JSON).
    pub fn finish(&mut self) -> Vec<ModelEvent> {
        let mut events = Vec::new();
        let rest = std::mem::take(&mut self.pending);
        if self.inside {
            self.inside = false;
            if parse_call(&rest).is_some() {
                self.emit_call(&rest, &mut events);
            } else {
                self.emit_text(format!("{TOOL_CALL_OPEN}{rest}"), &mut events);
            }
        } else {
            self.emit_text(rest, &mut events);
        }
        events
    }

    fn emit_text(&mut self, text: String, events: &mut Vec<ModelEvent>) {
        // Whitespace between or after calls is layout, not an answer.
        if text.is_empty() || (self.calls > 0 && text.trim().is_empty()) {
            return;
        }
        events.push(ModelEvent::TextDelta(text));
    }

    fn emit_call(&mut self, body: &str, events: &mut Vec<ModelEvent>) {
        match parse_call(body) {
            Some((name, arguments)) => {
                let index = self.calls;
                self.calls += 1;
                events.push(ModelEvent::ToolCallStart {
                    index,
                    id: next_call_id(),
                    name,
                });
                events.push(ModelEvent::ToolCallDelta { index, arguments });
                events.push(ModelEvent::ToolCallEnd { index });
            }
            None => self.emit_text(format!("{TOOL_CALL_OPEN}{body}{TOOL_CALL_CLOSE}"), events),
        }
    }
}

/// `{"name": "...", "arguments": {...}}` → (name, arguments as JSON text).
fn parse_call(body: &str) -> Option<(String, String)> {
    let value: Value = serde_json::from_str(body.trim()).ok()?;
    let name = value.get("name")?.as_str()?.trim();
    if name.is_empty() {
        return None;
    }
    let arguments = match value.get("arguments").or_else(|| value.get("parameters")) {
        None | Some(Value::Null) => "{}".to_owned(),
        // Some models double-encode the arguments as a JSON string.
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v.to_string(),
            _ => return None,
        },
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(_) => return None,
    };
    Some((name.to_owned(), arguments))
}

/// Length of the longest suffix of `text` that is a proper prefix of `tag`.
fn partial_prefix_len(text: &str, tag: &str) -> usize {
    (1..tag.len().min(text.len() + 1))
        .rev()
        .find(|&n| text.is_char_boundary(text.len() - n) && text.ends_with(&tag[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(pieces: &[&str]) -> (Vec<ModelEvent>, bool) {
        let mut parser = ToolCallParser::new();
        let mut events: Vec<ModelEvent> = pieces.iter().flat_map(|p| parser.push(p)).collect();
        events.extend(parser.finish());
        (events, parser.called_tools())
    }

    fn text_of(events: &[ModelEvent]) -> String {
        events
            .iter()
            .filter_map(|e| match e {
                ModelEvent::TextDelta(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    fn calls_of(events: &[ModelEvent]) -> Vec<(usize, String, String)> {
        let mut calls = Vec::new();
        for e in events {
            match e {
                ModelEvent::ToolCallStart { index, name, id } => {
                    assert!(id.starts_with("call_"));
                    calls.push((*index, name.clone(), String::new()));
                }
                ModelEvent::ToolCallDelta { index, arguments } => {
                    calls[*index].2.push_str(arguments)
                }
                _ => {}
            }
        }
        calls
    }

    #[test]
    fn plain_text_passes_through_unchanged() {
        let (events, called) = feed(&["Paris is ", "the capital", " of France. a < b"]);
        assert_eq!(text_of(&events), "Paris is the capital of France. a < b");
        assert!(!called);
    }

    #[test]
    fn a_call_split_across_many_tokens_becomes_start_delta_end() {
        let pieces = [
            "Let me check.",
            "\n<",
            "tool",
            "_call",
            ">\n{\"name\": \"get_",
            "weather\", \"arguments\": ",
            "{\"city\": \"Par",
            "is\"}}\n</tool",
            "_call>",
        ];
        let (events, called) = feed(&pieces);
        assert!(called);
        assert_eq!(text_of(&events), "Let me check.\n");
        assert_eq!(
            calls_of(&events),
            vec![(
                0,
                "get_weather".to_owned(),
                r#"{"city":"Paris"}"#.to_owned()
            )]
        );
        assert_eq!(events.last(), Some(&ModelEvent::ToolCallEnd { index: 0 }));
    }

    #[test]
    fn two_calls_get_consecutive_indexes_and_the_whitespace_between_is_dropped() {
        let out = "<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call>\n\n<tool_call>{\"name\":\"b\",\"arguments\":{\"x\":1}}</tool_call>\n";
        let (events, _) = feed(&[out]);
        assert_eq!(text_of(&events), "");
        assert_eq!(
            calls_of(&events),
            vec![
                (0, "a".to_owned(), "{}".to_owned()),
                (1, "b".to_owned(), r#"{"x":1}"#.to_owned())
            ]
        );
    }

    #[test]
    fn an_unclosed_call_with_complete_json_still_counts_at_the_end() {
        let (events, called) =
            feed(&["<tool_call>\n{\"name\": \"lookup\", \"arguments\": {\"q\": \"rust\"}}\n"]);
        assert!(called);
        assert_eq!(
            calls_of(&events),
            vec![(0, "lookup".to_owned(), r#"{"q":"rust"}"#.to_owned())]
        );
    }

    #[test]
    fn a_malformed_call_is_kept_as_text_instead_of_being_lost() {
        let (events, called) = feed(&["<tool_call>{\"name\": oops}</tool_call>"]);
        assert!(!called);
        assert_eq!(text_of(&events), "<tool_call>{\"name\": oops}</tool_call>");
    }

    #[test]
    fn string_encoded_arguments_are_decoded_once() {
        let (events, _) = feed(&[r#"<tool_call>{"name":"f","arguments":"{\"a\":2}"}</tool_call>"#]);
        assert_eq!(
            calls_of(&events),
            vec![(0, "f".to_owned(), r#"{"a":2}"#.to_owned())]
        );
    }

    #[test]
    fn a_trailing_angle_bracket_is_held_back_then_released() {
        let mut parser = ToolCallParser::new();
        assert_eq!(
            parser.push("x <"),
            vec![ModelEvent::TextDelta("x ".to_owned())]
        );
        assert_eq!(
            parser.push("b"),
            vec![ModelEvent::TextDelta("<b".to_owned())]
        );
        assert_eq!(parser.push("<tool"), vec![]);
        assert_eq!(
            parser.finish(),
            vec![ModelEvent::TextDelta("<tool".to_owned())]
        );
    }

    #[test]
    fn the_system_prompt_lists_every_tool_and_the_call_shape() {
        let tools = vec![ToolSpec {
            name: "get_weather".to_owned(),
            description: "Weather for a city".to_owned(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }];
        let prompt = tools_system_prompt(&tools);
        assert!(prompt.contains(r#""name":"get_weather""#), "{prompt}");
        assert!(prompt.contains("<tool_call>\n{\"name\": <function-name>"));
    }

    #[test]
    fn rendered_calls_parse_back_to_the_same_call() {
        let call = ToolCall {
            id: "call_1".to_owned(),
            name: "get_weather".to_owned(),
            arguments: r#"{"city":"Paris"}"#.to_owned(),
        };
        let (events, _) = feed(&[&render_tool_calls(&[call])]);
        assert_eq!(
            calls_of(&events),
            vec![(
                0,
                "get_weather".to_owned(),
                r#"{"city":"Paris"}"#.to_owned()
            )]
        );
        let result = render_tool_result(Some("get_weather"), "sunny");
        let body = result
            .strip_prefix("<tool_response>\n")
            .and_then(|r| r.strip_suffix("\n</tool_response>"))
            .expect("wrapped in <tool_response>");
        assert_eq!(
            serde_json::from_str::<Value>(body).unwrap(),
            json!({"name": "get_weather", "content": "sunny"})
        );
    }
}
