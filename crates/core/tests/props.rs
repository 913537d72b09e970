//! Property tests for the parsers in `core` that read what clients send: pagination
//! cursors (`?cursor=`), API keys (the `Authorization` header) and date bounds
//! (`?startDate=`/`?endDate=`). No input panics or runs away; cursors and dates
//! round-trip.

use std::time::Duration;

use agentbase_core::Cursor;
use agentbase_core::keys;
use agentbase_core::time_fmt::{iso8601, parse_date_bound};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
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

/// Years 1 to 9999, the range both renderings agree on.
const FIRST_MS: i64 = -62_135_596_800_000;
const LAST_MS: i64 = 253_402_300_799_999;

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn cursors_round_trip(t in any::<i64>(), id in any::<String>()) {
        let c = Cursor { t, id };
        let text = c.encode();
        prop_assert!(text.is_ascii());
        prop_assert_eq!(Cursor::decode(&text), Some(c.clone()));
        // Clients may hand a cursor back with surrounding whitespace.
        prop_assert_eq!(Cursor::decode(&format!(" {text}\n")), Some(c));
    }

    #[test]
    fn any_text_or_json_decodes_to_a_cursor_that_round_trips_or_to_none(
        input in prop_oneof![
            any::<String>(),
            any::<Vec<u8>>().prop_map(|b| STANDARD.encode(b)),
            (any::<Option<i64>>(), any::<Option<String>>(), any::<bool>()).prop_map(|(t, id, extra)| {
                let mut v = serde_json::Map::new();
                if let Some(t) = t { v.insert("t".into(), t.into()); }
                if let Some(id) = id { v.insert("id".into(), id.into()); }
                if extra { v.insert("x".into(), serde_json::Value::Null); }
                STANDARD.encode(serde_json::to_vec(&v).unwrap())
            }),
            "[A-Za-z0-9+/=]{0,64}",
        ],
    ) {
        let decoded = within(LIMIT, move || Cursor::decode(&input));
        if let Some(c) = decoded {
            prop_assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
    }

    #[test]
    fn presented_keys_split_into_an_id_and_secret_they_contain(
        presented in prop_oneof![any::<String>(), "agb_[A-Za-z0-9_]{0,40}"],
    ) {
        if let Some((id, secret)) = keys::parse(&presented) {
            prop_assert!(!secret.is_empty());
            prop_assert_eq!(&presented, &format!("agb_{id}_{secret}"));
        }
    }

    #[test]
    fn date_bounds_read_back_the_instants_they_render(ms in FIRST_MS..=LAST_MS, end in any::<bool>()) {
        let text = iso8601(ms);
        prop_assert_eq!(parse_date_bound(&text, end), Some(ms), "{}", text);
        // A bare day is its first or last millisecond.
        let day = &text[..10];
        let bound = parse_date_bound(day, end).expect("a day parses");
        let start = ms - ms.rem_euclid(86_400_000);
        prop_assert_eq!(bound, if end { start + 86_399_999 } else { start }, "{}", day);
    }

    #[test]
    fn any_date_text_parses_or_is_refused_without_panicking(
        text in prop_oneof![
            any::<String>(),
            "[+-]?[0-9]{1,7}-[0-9]{1,3}-[0-9]{1,3}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2}))?",
        ],
        end in any::<bool>(),
        ms in any::<i64>(),
    ) {
        within(LIMIT, move || {
            parse_date_bound(&text, end);
            iso8601(ms);
            agentbase_core::time_fmt::month_start(ms);
        });
    }
}

/// Knowledge text comes from crawled sites and questions from visitors: choosing a
/// quote takes any text (fences, blockquote markers and colons at line ends among
/// it), stays among the candidates it was given, and stays short.
mod quotes {
    use super::*;
    use agentbase_core::quote::{QuotePolicy, pick, uses};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_text_gets_a_short_quote_from_a_candidate(
            question in "\\PC{0,200}",
            chunks in proptest::collection::vec("(\\PC|[.!?\n ]|\n```|~~~|\n> ?|:\n){0,1500}", 0..6),
            candidates in 0usize..8,
            idf in any::<bool>(),
            rank_decay in 0.0f32..2.0,
            code_bonus in 0.0f64..2.0,
            chars in 1usize..1000,
            second in prop_oneof![Just(f64::INFINITY), 0.0f64..1.5],
        ) {
            let policy = QuotePolicy { candidates, idf, rank_decay, code_bonus, chars, second };
            let q = question.clone();
            let c = chunks.clone();
            let got = within(LIMIT, move || {
                let texts: Vec<&str> = c.iter().map(String::as_str).collect();
                pick(&q, &texts, policy)
            });
            prop_assert_eq!(got.is_empty(), chunks.is_empty());
            prop_assert!(got.len() <= 2);
            if let [(a, _), (b, _)] = got.as_slice() {
                prop_assert!(a != b, "both quotes from chunk {}", a);
            }
            for (rank, quote) in got {
                prop_assert!(rank < chunks.len().min(candidates.max(1)));
                prop_assert!(quote.chars().count() <= 2 * chars + 4);
                let _ = uses(&quote, &chunks[rank], &question);
            }
        }
    }
}
