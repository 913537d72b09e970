//! Property tests for the providers' SSE decoder (a test module: the decoder is
//! crate-private). Upstream bytes arrive split anywhere, with any line ending and
//! comments between fields; the same events come out, and arbitrary bytes decode the
//! same whole or in pieces, in bounded time.

use std::time::Duration;

use proptest::prelude::*;

use crate::sse::{SseDecoder, SseEvent};

/// Runs `f` on a thread with a runtime worker's stack and fails when it takes longer
/// than `limit` (the thread is left behind; the case has failed either way).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
        })
        .expect("spawn a case thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the case ran longer than {limit:?}"),
    }
}

const LIMIT: Duration = Duration::from_secs(10);

/// Decodes `body` fed in pieces cut at `cuts` (modulo its length).
fn decode(body: Vec<u8>, cuts: Vec<usize>) -> Result<Vec<SseEvent>, String> {
    within(LIMIT, move || {
        let mut at: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        at.sort_unstable();
        at.push(body.len());
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        let mut start = 0;
        for c in at {
            decoder.push(&body[start..c], &mut out)?;
            start = c;
        }
        Ok(out)
    })
}

/// Field text: no line breaks (a value cannot hold one), anything else.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\r\n]{0,24}",
        Just(String::new()),
        Just(" leading space".to_owned()),
        Just("{\"choices\":[{\"delta\":{\"content\":\"é\"}}]}".to_owned()),
        Just("[DONE]".to_owned()),
    ]
}

#[derive(Debug, Clone)]
struct Wire {
    event: Option<String>,
    data: Vec<String>,
    /// Comment and unknown-field lines sprinkled in.
    noise: Vec<String>,
    /// `data:x` instead of `data: x`.
    tight: bool,
}

fn wire_event() -> impl Strategy<Value = Wire> {
    (
        prop::option::of("[a-z_]{1,16}"),
        prop::collection::vec(value(), 1..4),
        prop::collection::vec(
            prop_oneof![
                "[^\r\n]{0,12}".prop_map(|c| format!(":{c}")),
                Just("id: 7".to_owned()),
                Just("retry: 10".to_owned()),
            ],
            0..3,
        ),
        any::<bool>(),
    )
        .prop_map(|(event, data, noise, tight)| Wire {
            event,
            data,
            noise,
            tight,
        })
}

fn encode(events: &[Wire], eol: &str) -> (Vec<u8>, Vec<SseEvent>) {
    let mut body = String::new();
    let mut expected = Vec::new();
    for e in events {
        let sep = if e.tight { ":" } else { ": " };
        for n in &e.noise {
            body.push_str(n);
            body.push_str(eol);
        }
        if let Some(name) = &e.event {
            body.push_str(&format!("event{sep}{name}{eol}"));
        }
        for d in &e.data {
            body.push_str(&format!("data{sep}{d}{eol}"));
        }
        body.push_str(eol);
        // The spec strips one space after the colon, and only one.
        let strip = |v: &str| {
            if e.tight {
                v.strip_prefix(' ').unwrap_or(v).to_owned()
            } else {
                v.to_owned()
            }
        };
        expected.push(SseEvent {
            event: e.event.as_deref().map(strip).unwrap_or_default(),
            data: e
                .data
                .iter()
                .map(|d| strip(d))
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    (body.into_bytes(), expected)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn events_split_anywhere_come_out_whole_with_any_line_ending(
        events in prop::collection::vec(wire_event(), 0..8),
        eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        cuts in prop::collection::vec(any::<usize>(), 0..24),
        cut_short in any::<bool>(),
    ) {
        let (mut body, mut expected) = encode(&events, eol);
        if cut_short && !events.is_empty() {
            // The last event loses its blank line: it was cut off, so it is not
            // dispatched.
            body.truncate(body.len() - eol.len());
            expected.pop();
        }
        prop_assert_eq!(decode(body, cuts), Ok(expected));
    }

    #[test]
    fn arbitrary_bytes_decode_the_same_whole_or_in_pieces(
        body in prop_oneof![
            any::<Vec<u8>>(),
            prop::collection::vec(
                prop::sample::select(vec![
                    "data: ", "data:", "event: ", "\n", "\r", "\r\n", ":", "x", "é", "\u{0}", "\u{feff}",
                ]),
                0..48,
            )
            .prop_map(|parts| parts.concat().into_bytes()),
        ],
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        prop_assert_eq!(decode(body.clone(), cuts), decode(body, Vec::new()));
    }
}
