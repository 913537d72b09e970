//! Property tests for the SDK's SSE reader (`parse_sse`): however the bytes of a UI
//! Message Stream are split into chunks, the same chunks come out, a stream cut
//! before `[DONE]` ends in one error, and arbitrary bytes end in bounded time.

use std::time::Duration;

use agentbase_client::types::UiChunk;
use agentbase_client::{Error, parse_sse};
use bytes::Bytes;
use futures_util::StreamExt;
use proptest::prelude::*;

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

/// What the reader yields, as text (the error type has no equality).
fn read(body: Vec<u8>, cuts: Vec<usize>) -> Vec<Result<UiChunk, String>> {
    within(LIMIT, move || {
        let pieces = split(&body, &cuts);
        let stream = futures_util::stream::iter(pieces.into_iter().map(Ok::<Bytes, Error>));
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(parse_sse(stream).collect::<Vec<_>>())
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    })
}

/// `body` cut at the given offsets (taken modulo its length), empty pieces included.
fn split(body: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    at.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for c in at {
        pieces.push(Bytes::copy_from_slice(&body[start..c]));
        start = c;
    }
    pieces.push(Bytes::copy_from_slice(&body[start..]));
    pieces
}

fn chunk() -> impl Strategy<Value = UiChunk> {
    let text = || any::<String>();
    prop_oneof![
        text().prop_map(|message_id| UiChunk::Start { message_id }),
        Just(UiChunk::StartStep),
        (text(), text()).prop_map(|(id, delta)| UiChunk::TextDelta { id, delta }),
        text().prop_map(|id| UiChunk::TextEnd { id }),
        (text(), text()).prop_map(|(tool_call_id, input_text_delta)| {
            UiChunk::ToolInputDelta {
                tool_call_id,
                input_text_delta,
            }
        }),
        (text(), text(), prop::option::of(text())).prop_map(|(source_id, url, title)| {
            UiChunk::SourceUrl {
                source_id,
                url,
                title,
            }
        }),
        Just(UiChunk::FinishStep),
        text().prop_map(|error_text| UiChunk::Error { error_text }),
    ]
}

fn frames(chunks: &[UiChunk]) -> Vec<u8> {
    let mut body = String::new();
    for c in chunks {
        body.push_str(&format!("data: {}\n\n", serde_json::to_string(c).unwrap()));
    }
    body.into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_stream_split_anywhere_gives_the_same_chunks(
        chunks in prop::collection::vec(chunk(), 0..12),
        cuts in prop::collection::vec(any::<usize>(), 0..24),
        trailer in any::<Vec<u8>>(),
    ) {
        let mut body = frames(&chunks);
        body.extend_from_slice(b"data: [DONE]\n\n");
        // Whatever follows [DONE] is never read.
        body.extend_from_slice(&trailer);
        let expected: Vec<Result<UiChunk, String>> = chunks.into_iter().map(Ok).collect();
        prop_assert_eq!(read(body, cuts), expected);
    }

    #[test]
    fn a_stream_cut_before_done_ends_in_one_error(
        chunks in prop::collection::vec(chunk(), 0..8),
        cut in any::<usize>(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let full = frames(&chunks);
        let body = full[..cut % (full.len() + 1)].to_vec();
        let out = read(body.clone(), cuts);
        let (last, events) = out.split_last().expect("at least the error");
        prop_assert!(last.as_ref().is_err_and(|e| e.contains("[DONE]")), "{:?}", last);
        // Every complete frame before the cut came out whole.
        let complete = String::from_utf8_lossy(&body).matches("\n\n").count();
        prop_assert_eq!(events.len(), complete);
        for (got, want) in events.iter().zip(&chunks) {
            prop_assert_eq!(got.as_ref().ok(), Some(want));
        }
    }

    #[test]
    fn arbitrary_bytes_read_the_same_whole_or_in_pieces(
        body in prop_oneof![
            any::<Vec<u8>>(),
            prop::collection::vec(
                prop::sample::select(vec![
                    "data: ", "data: [DONE]", "data: {\"type\":\"start-step\"}", "\n", "\n\n",
                    "\r\n", ":", "event: x", "data:{}", "{\"type\":\"nope\"}", "é", "\u{0}",
                ]),
                0..32,
            )
            .prop_map(|parts| parts.concat().into_bytes()),
        ],
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        prop_assert_eq!(read(body.clone(), cuts), read(body, Vec::new()));
    }
}

#[test]
fn a_long_event_in_small_pieces_is_read_in_linear_time() {
    // A 4 MB answer arriving 64 bytes at a time (a slow link): rescanning the whole
    // buffer on each piece would be ~10^11 steps.
    let delta = "x".repeat(4 << 20);
    let chunk = UiChunk::TextDelta {
        id: "t".into(),
        delta,
    };
    let mut body = frames(std::slice::from_ref(&chunk));
    body.extend_from_slice(b"data: [DONE]\n\n");
    let cuts: Vec<usize> = (1..body.len() / 64).map(|i| i * 64).collect();
    assert_eq!(read(body, cuts), vec![Ok(chunk)]);
}
