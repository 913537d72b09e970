//! A chat turn's answer on the wire, when it is sent whole rather than streamed.

use agentbase_api_types as api;
use agentbase_service::chat::{Turn, TurnEvent};

/// Waits for the whole turn and shapes it as the contract's `ChatResponse`.
pub(crate) async fn collect(turn: Turn) -> api::ChatResponse {
    let Turn { meta, mut events } = turn;
    let mut parts: Vec<api::MessagePart> = Vec::new();
    let mut text = String::new();
    let mut finish = ("error", 0.0);
    while let Some(event) = events.recv().await {
        match event {
            TurnEvent::TextDelta(d) => text.push_str(&d),
            TurnEvent::ToolInputAvailable { id, name, input } => {
                if !text.is_empty() {
                    parts.push(api::MessagePart::Text {
                        text: std::mem::take(&mut text),
                    });
                }
                parts.push(api::MessagePart::ToolCall {
                    tool_call_id: id,
                    tool_name: name,
                    input,
                });
            }
            TurnEvent::Finish {
                finish_reason,
                credits,
            } => {
                finish = (finish_reason, credits);
                break;
            }
            TurnEvent::ToolInputStart { .. }
            | TurnEvent::ToolInputDelta { .. }
            | TurnEvent::Sources(_)
            | TurnEvent::Error(_) => {}
        }
    }
    if !text.is_empty() {
        parts.push(api::MessagePart::Text { text });
    }
    api::ChatResponse {
        data: api::ChatMessage {
            id: meta.message_id,
            role: "assistant".into(),
            parts,
            metadata: api::ChatMetadata {
                user_message_id: meta.user_message_id,
                conversation_id: meta.conversation_id,
                user_id: meta.user_id,
                finish_reason: finish.0.to_owned(),
                usage: api::Usage { credits: finish.1 },
            },
        },
    }
}
