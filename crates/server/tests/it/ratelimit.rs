//! Rate limiting on both backends: 100 requests per sliding 10 s window per
//! (API key, client IP), with the contract's headers. The clock is manual.

use agentbase_core::{Clock, ManualClock};
use agentbase_service::LimiterBackend;

use crate::{TestApp, outcome, redis_url, spawn_with};

async fn apps(
    configure: impl Fn(&mut agentbase_service::Settings) + Copy,
) -> Vec<(&'static str, TestApp)> {
    let mut out = vec![("memory", spawn_with(configure).await)];
    if let Some(url) = redis_url() {
        let app = spawn_with(move |s| {
            configure(s);
            s.rate_limit.backend = LimiterBackend::Redis;
            s.rate_limit.redis_url = url.clone();
        })
        .await;
        assert_eq!(app.app.accounts().limiter_backend(), "redis");
        out.push(("redis", app));
    }
    out
}

fn header(r: &reqwest::Response, name: &str) -> i64 {
    r.headers()[name].to_str().unwrap().parse().unwrap()
}

async fn get(t: &TestApp) -> reqwest::Response {
    t.raw(reqwest::Method::GET, "/api/v2/agents")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn request_100_passes_101_is_refused_and_the_window_slides() {
    for (backend, t) in apps(|_| {}).await {
        let t0 = t.clock.now_ms();
        for i in 1..=100 {
            let r = get(&t).await;
            assert_eq!(r.status(), 200, "{backend}: request {i}");
            assert_eq!(header(&r, "x-ratelimit-limit"), 100);
            assert_eq!(header(&r, "x-ratelimit-remaining"), 100 - i, "{backend}");
            assert_eq!(
                header(&r, "x-ratelimit-reset"),
                t0 + 10_000,
                "{backend}: reset is Unix ms"
            );
        }
        let r = get(&t).await;
        assert_eq!(header(&r, "retry-after"), 10, "{backend}");
        assert_eq!(header(&r, "x-ratelimit-remaining"), 0);
        assert_eq!(header(&r, "x-ratelimit-reset"), t0 + 10_000);
        let (status, code, body) = outcome(r).await;
        assert_eq!(
            (status, code.as_deref()),
            (429, Some("RATE_LIMIT_TOO_MANY_REQUESTS")),
            "{backend}"
        );
        assert_eq!(
            body["error"]["message"],
            "Too many requests, please try again later"
        );

        t.clock.advance_ms(9_999);
        let r = get(&t).await;
        assert_eq!(
            (r.status().as_u16(), header(&r, "retry-after")),
            (429, 1),
            "{backend}: 1 ms before the slide"
        );

        t.clock.advance_ms(1);
        let r = get(&t).await;
        assert_eq!(
            r.status(),
            200,
            "{backend}: allowed again once the window slides"
        );
        assert_eq!(header(&r, "x-ratelimit-remaining"), 99);
    }
}

#[tokio::test]
async fn the_window_slides_rather_than_resetting() {
    for (backend, t) in apps(|s| s.rate_limit.requests = 4).await {
        let clock: &ManualClock = &t.clock;
        for _ in 0..2 {
            assert_eq!(get(&t).await.status(), 200);
        }
        clock.advance_ms(5_000);
        for _ in 0..2 {
            assert_eq!(get(&t).await.status(), 200);
        }
        assert_eq!(get(&t).await.status(), 429, "{backend}");
        // At +10 s the first two leave the window; the later two still count.
        clock.advance_ms(5_000);
        assert_eq!(get(&t).await.status(), 200, "{backend}");
        assert_eq!(get(&t).await.status(), 200, "{backend}");
        let r = get(&t).await;
        assert_eq!(
            r.status(),
            429,
            "{backend}: a fixed window would have reset here"
        );
        assert_eq!(header(&r, "retry-after"), 5);
    }
}

#[tokio::test]
async fn windows_are_per_key_and_per_client_ip() {
    for (backend, t) in apps(|s| {
        s.rate_limit.requests = 2;
        s.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await
    {
        let from = |ip: &'static str| {
            t.raw(reqwest::Method::GET, "/api/v2/agents")
                .header("x-forwarded-for", ip)
                .send()
        };
        assert_eq!(from("1.1.1.1").await.unwrap().status(), 200);
        assert_eq!(from("1.1.1.1").await.unwrap().status(), 200);
        assert_eq!(from("1.1.1.1").await.unwrap().status(), 429, "{backend}");
        assert_eq!(
            from("2.2.2.2").await.unwrap().status(),
            200,
            "{backend}: another IP has its own window"
        );

        let (_, key2) = {
            let (_, k) = t
                .app
                .accounts()
                .create_key(&t.workspace_id, "second", None)
                .await
                .unwrap();
            ((), k)
        };
        let r = reqwest::Client::new()
            .get(t.url("/api/v2/agents"))
            .bearer_auth(&key2)
            .header("x-forwarded-for", "1.1.1.1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{backend}: another key has its own window");
    }
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let t = spawn_with(|s| s.rate_limit.requests = 2).await;
    for (ip, expected) in [("1.1.1.1", 200), ("2.2.2.2", 200), ("3.3.3.3", 429)] {
        let r = t
            .raw(reqwest::Method::GET, "/api/v2/agents")
            .header("x-forwarded-for", ip)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            expected,
            "spoofed {ip} shares the socket's window"
        );
    }
}

#[tokio::test]
async fn the_client_retries_a_429_after_the_advertised_delay() {
    let t = spawn_with(|s| {
        s.rate_limit.requests = 1;
        s.rate_limit.window_secs = 1;
    })
    .await;
    let c = agentbase_client::Client::new(t.base(), Some(t.key.clone())).with_max_retries(3);
    c.list_agents(None, None).await.unwrap();
    // Refused at first; the server's clock moves while the client waits out Retry-After.
    let clock = t.clock.clone();
    let mover = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        clock.advance_ms(1_000);
    });
    let started = std::time::Instant::now();
    c.list_agents(None, None)
        .await
        .expect("retried after Retry-After");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "waited about Retry-After (1 s)"
    );
    mover.await.unwrap();
}
