//! Both backends against the same scenarios, called directly with explicit times.

use agentbase_core::ids::alphanumeric;
use agentbase_limiter::{Limiter, MemoryLimiter, RedisLimiter, Window};

async fn limiters() -> Vec<Limiter> {
    let mut out = vec![Limiter::Memory(MemoryLimiter::new())];
    match std::env::var("AGENTBASE_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => out.push(Limiter::Redis(
            RedisLimiter::connect(&url, "test:").await.expect("redis"),
        )),
        _ => assert!(
            std::env::var("AGENTBASE_TEST_REQUIRE_SERVICES").is_err(),
            "AGENTBASE_TEST_REDIS_URL is required when AGENTBASE_TEST_REQUIRE_SERVICES is set"
        ),
    }
    out
}

const W: Window = Window {
    limit: 3,
    window_ms: 1_000,
};

#[tokio::test]
async fn both_backends_agree_on_a_sliding_window() {
    for l in limiters().await {
        let key = alphanumeric(16);
        let name = l.backend_name();
        let t = 1_000_000;
        let d = l.check(&key, W, t).await.unwrap();
        assert_eq!(
            (d.allowed, d.remaining, d.reset_ms),
            (true, 2, t + 1_000),
            "{name}"
        );
        l.check(&key, W, t + 100).await.unwrap();
        let d = l.check(&key, W, t + 200).await.unwrap();
        assert_eq!((d.allowed, d.remaining), (true, 0), "{name}");
        let d = l.check(&key, W, t + 300).await.unwrap();
        assert_eq!(
            (d.allowed, d.remaining, d.reset_ms),
            (false, 0, t + 1_000),
            "{name}"
        );
        assert_eq!(d.retry_after_secs(t + 300), 1);
        // Refusals are not logged: the first slot frees exactly at t + 1000.
        let d = l.check(&key, W, t + 999).await.unwrap();
        assert!(!d.allowed, "{name}");
        let d = l.check(&key, W, t + 1_000).await.unwrap();
        assert_eq!(
            (d.allowed, d.remaining, d.reset_ms),
            (true, 0, t + 1_100),
            "{name}"
        );
        // Another key is untouched.
        assert!(
            l.check(&alphanumeric(16), W, t + 1_000)
                .await
                .unwrap()
                .allowed,
            "{name}"
        );
    }
}

#[tokio::test]
async fn simultaneous_requests_never_exceed_the_limit() {
    for l in limiters().await {
        let l = std::sync::Arc::new(l);
        let key = alphanumeric(16);
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (l, key) = (l.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                l.check(
                    &key,
                    Window {
                        limit: 10,
                        window_ms: 60_000,
                    },
                    5_000,
                )
                .await
                .unwrap()
                .allowed
            }));
        }
        let mut allowed = 0;
        for t in tasks {
            allowed += usize::from(t.await.unwrap());
        }
        assert_eq!(allowed, 10, "{}", l.backend_name());
    }
}

#[tokio::test]
async fn idle_keys_are_swept_from_memory() {
    let m = MemoryLimiter::new();
    for i in 0..5_000 {
        m.check(&format!("k{i}"), W, 0);
    }
    // Far in the future every log has expired; the periodic sweep drops them.
    for _ in 0..5_000 {
        m.check("active", W, 10_000_000);
    }
    assert!(
        m.tracked_keys() < 10,
        "{} keys still tracked",
        m.tracked_keys()
    );
}

#[tokio::test]
async fn a_sweep_started_by_a_short_window_keeps_longer_windows() {
    let m = MemoryLimiter::new();
    let long = Window {
        limit: 2,
        window_ms: 240_000,
    };
    let t = 1_000_000;
    assert!(m.check("widget|a|1.2.3.4", long, t).allowed);
    assert!(m.check("widget|a|1.2.3.4", long, t).allowed);
    // A flood on the 1 s window, 20 s later, sweeps many times.
    for i in 0..10_000 {
        m.check(&format!("api|{i}"), W, t + 20_000);
    }
    // The widget visitor's log is still there: its third message is refused.
    let d = m.check("widget|a|1.2.3.4", long, t + 20_001);
    assert!(!d.allowed, "the 240 s log was swept by the 1 s window");
    assert_eq!(d.reset_ms, t + 240_000);
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    let started = std::time::Instant::now();
    let err = RedisLimiter::connect("redis://127.0.0.1:1", "x:")
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("unavailable"));
    assert!(started.elapsed().as_secs() < 5);
    assert!(RedisLimiter::connect("http://nope", "x:").await.is_err());
}
