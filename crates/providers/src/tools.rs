//! Tool calls as they stream: both providers announce a call (id, name), send its
//! arguments in fragments and close it, but each in its own shape. This turns either
//! into the one order `ChatModel` promises: `ToolCallStart`, deltas, `ToolCallEnd`,
//! with dense indices in the order calls appeared.

use agentbase_core::model::{ModelError, ModelEvent};
use serde_json::Value;

#[derive(Default)]
pub(crate) struct OpenCalls {
    calls: Vec<Call>,
}

#[derive(Default)]
struct Call {
    id: Option<String>,
    name: Option<String>,
    started: bool,
    ended: bool,
    /// Argument fragments that arrived before the name did (the start event needs it).
    pending: String,
    sent_arguments: bool,
}

impl OpenCalls {
    /// Opens a call and returns its index.
    pub(crate) fn open(&mut self) -> usize {
        self.calls.push(Call::default());
        self.calls.len() - 1
    }

    pub(crate) fn any(&self) -> bool {
        !self.calls.is_empty()
    }

    pub(crate) fn position_of_id(&self, id: &str) -> Option<usize> {
        self.calls
            .iter()
            .position(|call| call.id.as_deref() == Some(id))
    }

    /// Applies one fragment: the id and name count until the call has started
    /// (some servers repeat them on every fragment), arguments are passed on.
    pub(crate) fn update(
        &mut self,
        index: usize,
        id: Option<&str>,
        name: Option<&str>,
        arguments: &str,
        out: &mut Vec<ModelEvent>,
    ) {
        let Some(call) = self.calls.get_mut(index) else {
            return;
        };
        if call.ended {
            return;
        }
        if !call.started {
            if let Some(id) = id.filter(|id| !id.is_empty()) {
                call.id = Some(id.to_owned());
            }
            if let Some(name) = name.filter(|name| !name.is_empty()) {
                call.name = Some(name.to_owned());
            }
            call.pending.push_str(arguments);
            if let Some(name) = call.name.clone() {
                call.started = true;
                // A server that sends no id still needs the call answerable by one.
                let id = call.id.clone().unwrap_or_else(|| format!("call_{index}"));
                out.push(ModelEvent::ToolCallStart { index, id, name });
                let pending = std::mem::take(&mut call.pending);
                Self::send_arguments(call, index, pending, out);
            }
            return;
        }
        Self::send_arguments(call, index, arguments.to_owned(), out);
    }

    fn send_arguments(call: &mut Call, index: usize, arguments: String, out: &mut Vec<ModelEvent>) {
        if !arguments.is_empty() {
            call.sent_arguments = true;
            out.push(ModelEvent::ToolCallDelta { index, arguments });
        }
    }

    pub(crate) fn end(
        &mut self,
        index: usize,
        out: &mut Vec<ModelEvent>,
    ) -> Result<(), ModelError> {
        let Some(call) = self.calls.get_mut(index) else {
            return Ok(());
        };
        if call.ended {
            return Ok(());
        }
        if !call.started {
            return Err(ModelError::Failed(format!(
                "upstream sent tool call {index} without a name"
            )));
        }
        call.ended = true;
        // A call without parameters streams no argument text at all on Anthropic
        // (and on some compatible servers); callers parse the arguments as JSON.
        if !call.sent_arguments {
            out.push(ModelEvent::ToolCallDelta {
                index,
                arguments: "{}".into(),
            });
        }
        out.push(ModelEvent::ToolCallEnd { index });
        Ok(())
    }

    pub(crate) fn end_all(&mut self, out: &mut Vec<ModelEvent>) -> Result<(), ModelError> {
        (0..self.calls.len()).try_for_each(|index| self.end(index, out))
    }
}

/// A token count from a usage object; absent or odd values count as zero.
pub(crate) fn as_u32(value: Option<&Value>) -> u32 {
    value
        .and_then(Value::as_u64)
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_sent_before_the_name_follow_the_start_event() {
        let mut calls = OpenCalls::default();
        let mut out = Vec::new();
        let index = calls.open();
        calls.update(index, Some("call_1"), None, "{\"a\":", &mut out);
        assert!(out.is_empty());
        calls.update(index, None, Some("lookup"), "1}", &mut out);
        calls.end_all(&mut out).expect("named call");
        assert_eq!(
            out,
            vec![
                ModelEvent::ToolCallStart {
                    index: 0,
                    id: "call_1".into(),
                    name: "lookup".into()
                },
                ModelEvent::ToolCallDelta {
                    index: 0,
                    arguments: "{\"a\":1}".into()
                },
                ModelEvent::ToolCallEnd { index: 0 },
            ]
        );
    }

    #[test]
    fn a_call_without_arguments_gets_an_empty_object_and_ends_once() {
        let mut calls = OpenCalls::default();
        let mut out = Vec::new();
        let index = calls.open();
        calls.update(index, None, Some("now"), "", &mut out);
        calls.end(index, &mut out).expect("named call");
        calls.end_all(&mut out).expect("already ended");
        assert_eq!(
            out,
            vec![
                ModelEvent::ToolCallStart {
                    index: 0,
                    id: "call_0".into(),
                    name: "now".into()
                },
                ModelEvent::ToolCallDelta {
                    index: 0,
                    arguments: "{}".into()
                },
                ModelEvent::ToolCallEnd { index: 0 },
            ]
        );
    }

    #[test]
    fn a_call_that_never_got_a_name_is_an_error() {
        let mut calls = OpenCalls::default();
        let index = calls.open();
        calls.update(index, Some("call_1"), None, "{}", &mut Vec::new());
        assert!(matches!(
            calls.end_all(&mut Vec::new()),
            Err(ModelError::Failed(_))
        ));
    }
}
