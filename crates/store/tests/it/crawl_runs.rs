//! Crawl runs: lists by status and start time, and the outbox of Apify's run
//! webhooks, written with the run change that made the event (SQLite and
//! PostgreSQL).

use agentbase_core::Plan;
use agentbase_core::crawl_run::{CrawlRun, RunFilter, RunStatus};
use agentbase_core::run_webhook::RunWebhook;
use agentbase_core::webhook::{Attempt, DeliveryState};
use agentbase_store::{AttemptOutcome, MAX_BYTES_PER_READ, RunDelivery};

use crate::{backends, workspace};

fn run(workspace_id: &str, id: &str, started_at: i64, webhooks: Vec<RunWebhook>) -> CrawlRun {
    CrawlRun {
        id: id.into(),
        workspace_id: workspace_id.into(),
        actor_id: "website-content-crawler".into(),
        status: RunStatus::Ready,
        status_message: None,
        input: serde_json::json!({"startUrls": ["https://example.com/"]}),
        dataset_id: format!("{id}-ds"),
        timeout_secs: 60,
        pages_done: 0,
        pages_failed: 0,
        items: 0,
        started_at,
        finished_at: None,
        kv_store_id: format!("{id}-kv"),
        webhooks,
    }
}

fn ids(runs: &[CrawlRun]) -> Vec<&str> {
    runs.iter().map(|r| r.id.as_str()).collect()
}

#[tokio::test]
async fn runs_are_listed_by_status_and_start_and_an_end_writes_its_webhooks() {
    let hook = RunWebhook {
        event_types: vec!["ACTOR.RUN.FAILED".into()],
        request_url: "https://example.com/hook".into(),
        payload_template: Some("{\"run\": {{resource.id}}}".into()),
        headers_template: None,
        idempotency_key: None,
        do_not_retry: true,
        should_interpolate_strings: false,
    };
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Standard, 1);
        s.insert_workspace(&w).await.unwrap();
        for (i, id) in ["r1", "r2", "r3"].into_iter().enumerate() {
            let r = run(&w.id, id, 1_000 * (i as i64 + 1), vec![hook.clone()]);
            assert!(s.insert_run(&r, "node", 10_000_000, 10).await.unwrap());
        }
        let (ready, succeeded) = (RunStatus::Ready, RunStatus::Succeeded);
        assert!(
            s.set_run_status("r1", &[ready], succeeded, Some("done"), 5_000)
                .await
                .unwrap()
        );

        // Lists: order, pages, statuses and start times; no inputs or webhooks.
        let any = RunFilter::default();
        let (all, total) = s.runs(&w.id, &any, (0, 10), false).await.unwrap();
        assert_eq!(
            (ids(&all), total),
            (vec!["r1", "r2", "r3"], 3),
            "{}",
            b.name
        );
        assert!(
            all.iter()
                .all(|r| r.input.is_null() && r.webhooks.is_empty())
        );
        let (page, _) = s.runs(&w.id, &any, (1, 1), true).await.unwrap();
        assert_eq!(ids(&page), ["r2"], "{}", b.name);
        let done = RunFilter {
            statuses: vec![succeeded],
            ..RunFilter::default()
        };
        let (only, total) = s.runs(&w.id, &done, (0, 10), false).await.unwrap();
        assert_eq!((ids(&only), total), (vec!["r1"], 1), "{}", b.name);
        let span = RunFilter {
            started_after: Some(2_000),
            started_before: Some(2_000),
            ..RunFilter::default()
        };
        let (within, _) = s.runs(&w.id, &span, (0, 10), false).await.unwrap();
        assert_eq!(ids(&within), ["r2"], "{}", b.name);
        let (none, total) = s.runs("elsewhere", &any, (0, 10), false).await.unwrap();
        assert_eq!((none.len(), total), (0, 0));

        // Items count towards the workspace's dataset bytes; deleting an ended
        // run gives them back, and a run still going is not deleted.
        let items = vec!["{\"url\":\"a\"}".to_owned(), "{\"url\":\"bb\"}".to_owned()];
        s.append_items("r1-ds", 0, &items).await.unwrap();
        s.append_items("r3-ds", 0, &items[..1]).await.unwrap();
        assert_eq!(
            s.dataset_bytes(&w.id).await.unwrap(),
            11 + 12 + 11,
            "{}",
            b.name
        );
        let r3 = s.run(&w.id, "r3").await.unwrap().unwrap();
        assert!(!s.delete_run(&r3).await.unwrap(), "r3 has not ended");
        let r1 = s.run(&w.id, "r1").await.unwrap().unwrap();
        assert!(s.delete_run(&r1).await.unwrap());
        assert!(!s.delete_run(&r1).await.unwrap(), "gone already");
        assert_eq!(s.dataset_bytes(&w.id).await.unwrap(), 11, "{}", b.name);
        assert_eq!(s.dataset_items("r1-ds", 0, None, false).await.unwrap().1, 0);
        assert!(s.run_by_id("r1").await.unwrap().is_none());
        let (_, total) = s.runs(&w.id, &any, (0, 10), false).await.unwrap();
        assert_eq!(total, 2);

        // A read stops once its items hold MAX_BYTES_PER_READ (the first item
        // whatever its size), in either order; the total is the whole dataset's.
        let big = format!("\"{}\"", "x".repeat(6 * 1024 * 1024));
        let five: Vec<String> = (0..5).map(|_| big.clone()).collect();
        s.append_items("r2-ds", 0, &five).await.unwrap();
        let (first, total) = s.dataset_items("r2-ds", 0, None, false).await.unwrap();
        assert_eq!((first.len(), total), (3, 5), "{}", b.name);
        assert!(MAX_BYTES_PER_READ < 3 * big.len() as i64);
        let (rest, _) = s.dataset_items("r2-ds", 3, None, true).await.unwrap();
        assert_eq!(rest.len(), 2, "{}", b.name);
        let (one, _) = s.dataset_items("r2-ds", 1, Some(1), false).await.unwrap();
        assert_eq!(one.len(), 1);

        // A run's webhooks come back with it.
        let r3 = s.run_by_id("r3").await.unwrap().unwrap();
        assert_eq!(r3.webhooks, std::slice::from_ref(&hook), "{}", b.name);

        // An end writes its deliveries with the status, once.
        let d = RunDelivery {
            id: "r2.0.ACTOR.RUN.FAILED".into(),
            workspace_id: w.id.clone(),
            run_id: "r2".into(),
            event_type: "ACTOR.RUN.FAILED".into(),
            url: hook.request_url.clone(),
            headers: vec![("X-Run".into(), "r2".into())],
            body: "{\"run\": \"r2\"}".into(),
            max_attempts: 1,
            attempts: 0,
            refused: None,
        };
        let failed = (&[ready][..], RunStatus::Failed);
        assert!(
            s.set_run_status_with("r2", failed, Some("x"), 6_000, std::slice::from_ref(&d))
                .await
                .unwrap()
        );
        assert!(
            !s.set_run_status_with("r2", failed, Some("x"), 7_000, std::slice::from_ref(&d))
                .await
                .unwrap(),
            "an ended run does not end again"
        );
        assert_eq!(
            s.due_run_deliveries(6_000, 10).await.unwrap(),
            std::slice::from_ref(&d.id)
        );
        let claimed = s.claim_run_delivery(&d.id, 6_000, 9_000).await.unwrap();
        assert_eq!(
            claimed,
            Some(RunDelivery {
                attempts: 1,
                ..d.clone()
            }),
            "{}",
            b.name
        );
        assert_eq!(
            s.claim_run_delivery(&d.id, 6_000, 9_000).await.unwrap(),
            None
        );
        assert!(
            s.due_run_deliveries(7_000, 10).await.unwrap().is_empty(),
            "leased"
        );
        let outcome = AttemptOutcome {
            state: DeliveryState::Delivered,
            next_attempt_at: 7_000,
            attempt: Attempt {
                attempt: 1,
                started_at: 6_000,
                duration_ms: 5,
                status_code: Some(200),
                error: None,
            },
        };
        s.finish_run_delivery(&d.id, &outcome).await.unwrap();
        assert_eq!(
            s.run_deliveries("r2").await.unwrap(),
            [("ACTOR.RUN.FAILED".to_owned(), "delivered".to_owned(), 1)]
        );
        assert!(s.due_run_deliveries(20_000, 10).await.unwrap().is_empty());
        b.finish().await;
    }
}
