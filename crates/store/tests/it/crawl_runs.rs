//! Crawl runs: lists by status and start time, and the outbox of Apify's run
//! webhooks, written with the run change that made the event (SQLite and
//! PostgreSQL).

use agentbase_core::Plan;
use agentbase_core::crawl_run::{CrawlRun, RunFilter, RunStatus};
use agentbase_core::run_webhook::{ApifyWebhook, Condition, RunWebhook, WebhookDefinition};
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
        dataset_deleted_at: None,
        kv_store_deleted_at: None,
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
            webhook_id: None,
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

#[tokio::test]
async fn a_dataset_or_store_goes_alone_and_ended_runs_expire_by_plan() {
    for b in backends().await {
        let s = &b.store;
        let free = workspace(Plan::Free, 1);
        let standard = workspace(Plan::Standard, 2);
        for w in [&free, &standard] {
            s.insert_workspace(w).await.unwrap();
        }
        let (ready, succeeded) = (RunStatus::Ready, RunStatus::Succeeded);
        for (w, id, ends_at) in [
            (&free, "f1", Some(1_000)),
            (&free, "f2", Some(50_000)),
            (&free, "f3", None),
            (&standard, "s1", Some(1_000)),
        ] {
            let r = run(&w.id, id, 500, Vec::new());
            assert!(s.insert_run(&r, "node", 10_000_000, 10).await.unwrap());
            if let Some(at) = ends_at {
                let from = [ready];
                let ended = s.set_run_status(id, &from, succeeded, None, at);
                assert!(ended.await.unwrap());
            }
        }

        // Expiry: by plan, ended before the cut, oldest first, at most `limit`;
        // a run still going never.
        let expired = |plan, before| s.expired_runs(plan, before, 10);
        assert_eq!(ids(&expired(Plan::Free, 10_000).await.unwrap()), ["f1"]);
        assert_eq!(
            ids(&expired(Plan::Free, i64::MAX).await.unwrap()),
            ["f1", "f2"],
            "{}",
            b.name
        );
        assert_eq!(ids(&expired(Plan::Standard, 10_000).await.unwrap()), ["s1"]);
        assert!(expired(Plan::Pro, i64::MAX).await.unwrap().is_empty());
        let one = s.expired_runs(Plan::Free, i64::MAX, 1).await.unwrap();
        assert_eq!(ids(&one), ["f1"]);

        // A dataset deleted alone: its items go, the run stays with the dataset
        // marked, and what the run counts is its log.
        let items = vec!["{\"url\":\"a\"}".to_owned(); 3];
        s.append_items("f2-ds", 0, &items).await.unwrap();
        s.append_log("f2", 0, &["12345".to_owned()]).await.unwrap();
        assert_eq!(s.dataset_bytes(&free.id).await.unwrap(), 3 * 11 + 5);
        let f2 = s.run(&free.id, "f2").await.unwrap().unwrap();
        assert!(s.delete_dataset(&f2, 60_000).await.unwrap(), "{}", b.name);
        assert!(
            !s.delete_dataset(&f2, 61_000).await.unwrap(),
            "gone already"
        );
        let f2 = s.run(&free.id, "f2").await.unwrap().unwrap();
        assert_eq!(f2.dataset_deleted_at, Some(60_000));
        assert_eq!(f2.kv_store_deleted_at, None);
        assert_eq!(s.dataset_items("f2-ds", 0, None, false).await.unwrap().1, 0);
        assert_eq!(s.dataset_bytes(&free.id).await.unwrap(), 5, "{}", b.name);
        let f3 = s.run(&free.id, "f3").await.unwrap().unwrap();
        assert!(!s.delete_dataset(&f3, 60_000).await.unwrap(), "still going");

        // An item stored too deep to parse back (before items were bounded) is
        // read as its text, not a failed read.
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        s.append_items("f3-ds", 0, &[deep.clone(), "{\"ok\":1}".into()])
            .await
            .unwrap();
        let (read, _) = s.dataset_items("f3-ds", 0, None, false).await.unwrap();
        assert_eq!(
            read,
            [serde_json::json!(deep), serde_json::json!({"ok": 1})]
        );

        // A large dataset goes in batches, all of it.
        let many: Vec<String> = (0..2_500).map(|i| format!("{{\"n\":{i}}}")).collect();
        s.append_items("f1-ds", 0, &many).await.unwrap();
        let f1 = s.run(&free.id, "f1").await.unwrap().unwrap();
        assert!(s.delete_run(&f1).await.unwrap(), "{}", b.name);
        assert_eq!(s.dataset_items("f1-ds", 0, None, false).await.unwrap().1, 0);
        assert!(s.run_by_id("f1").await.unwrap().is_none());

        // A key-value store deleted alone: its records go, the run stays.
        s.put_record("f2-kv", "INPUT", "application/json", "{}")
            .await
            .unwrap();
        assert!(s.delete_kv_store(&f2, 62_000).await.unwrap());
        assert!(!s.delete_kv_store(&f2, 63_000).await.unwrap());
        assert_eq!(s.record("f2-kv", "INPUT").await.unwrap(), None);
        let f2 = s.run_by_id("f2").await.unwrap().unwrap();
        assert_eq!(f2.kv_store_deleted_at, Some(62_000), "{}", b.name);
        // A run listed for expiry reads the marks too (and no input).
        let listed = expired(Plan::Free, i64::MAX).await.unwrap();
        assert_eq!(ids(&listed), ["f2"]);
        assert_eq!(listed[0].dataset_deleted_at, Some(60_000));
        assert!(listed[0].input.is_null());
        b.finish().await;
    }
}

fn definition(condition: Condition, key: Option<&str>) -> WebhookDefinition {
    WebhookDefinition {
        hook: RunWebhook {
            event_types: vec!["ACTOR.RUN.SUCCEEDED".into()],
            request_url: "https://example.com/hook".into(),
            payload_template: None,
            headers_template: None,
            idempotency_key: key.map(str::to_owned),
            do_not_retry: false,
            should_interpolate_strings: false,
        },
        condition,
        is_ad_hoc: false,
        description: None,
        ignore_ssl_errors: false,
    }
}

#[tokio::test]
async fn persistent_webhooks_are_bounded_found_by_run_and_list_their_dispatches() {
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Standard, 1);
        s.insert_workspace(&w).await.unwrap();
        let actor = Condition {
            actor_id: Some("crawler".into()),
            actor_run_id: None,
        };
        let one_run = Condition {
            actor_id: None,
            actor_run_id: Some("r1".into()),
        };
        let hook = |id: &str, at: i64, d: WebhookDefinition| ApifyWebhook {
            id: id.into(),
            workspace_id: w.id.clone(),
            definition: d,
            created_at: at,
            modified_at: at,
        };
        let every = hook("h1", 1, definition(actor.clone(), Some("k1")));
        assert!(
            s.insert_apify_webhook(&every, 2).await.unwrap(),
            "{}",
            b.name
        );
        // The same idempotency key, or the bound, refuse in the statement.
        let twin = hook("h2", 2, definition(actor.clone(), Some("k1")));
        assert!(
            !s.insert_apify_webhook(&twin, 5).await.unwrap(),
            "{}",
            b.name
        );
        let own = hook("h3", 3, definition(one_run, None));
        assert!(s.insert_apify_webhook(&own, 2).await.unwrap());
        let third = hook("h4", 4, definition(actor.clone(), None));
        assert!(!s.insert_apify_webhook(&third, 2).await.unwrap(), "bound");

        let by_key = s.apify_webhook(&w.id, "k1", true).await.unwrap();
        assert_eq!(by_key.as_ref(), Some(&every), "{}", b.name);
        assert!(
            s.apify_webhook("other", "h1", false)
                .await
                .unwrap()
                .is_none()
        );
        let ids_of =
            |hooks: &[ApifyWebhook]| hooks.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
        let (all, total) = s.apify_webhooks(&w.id, false, (0, 10), true).await.unwrap();
        assert_eq!((ids_of(&all), total), (vec!["h3".into(), "h1".into()], 2));
        let (actors, total) = s.apify_webhooks(&w.id, true, (0, 10), false).await.unwrap();
        assert_eq!((ids_of(&actors), total), (vec!["h1".into()], 1));
        let of_r1 = s.apify_webhooks_of_run(&w.id, "r1").await.unwrap();
        assert_eq!(ids_of(&of_r1), ["h1", "h3"], "{}", b.name);
        assert_eq!(
            ids_of(&s.apify_webhooks_of_run(&w.id, "r2").await.unwrap()),
            ["h1"]
        );

        // An update may not take another's key; a delete takes it away.
        let mut changed = own.clone();
        changed.definition.hook.idempotency_key = Some("k1".into());
        assert!(!s.update_apify_webhook(&changed).await.unwrap());
        changed.definition.hook.idempotency_key = Some("k3".into());
        changed.modified_at = 9;
        assert!(s.update_apify_webhook(&changed).await.unwrap());
        let read = s.apify_webhook(&w.id, "h3", false).await.unwrap().unwrap();
        assert_eq!(read, changed, "{}", b.name);
        assert!(s.delete_apify_webhook(&w.id, "h3").await.unwrap());
        assert!(!s.delete_apify_webhook(&w.id, "h3").await.unwrap());

        // Dispatches: all of the workspace's, or one webhook's.
        let r = run(&w.id, "r1", 10, Vec::new());
        assert!(s.insert_run(&r, "node", 10_000_000, 10).await.unwrap());
        let delivery = |id: &str, webhook_id: Option<&str>| RunDelivery {
            id: id.into(),
            workspace_id: w.id.clone(),
            run_id: "r1".into(),
            event_type: "ACTOR.RUN.CREATED".into(),
            url: "https://example.com/hook".into(),
            headers: Vec::new(),
            body: "{}".into(),
            max_attempts: 1,
            attempts: 0,
            refused: None,
            webhook_id: webhook_id.map(str::to_owned),
        };
        let made = [delivery("r1.0.C", None), delivery("r1.h1.C", Some("h1"))];
        s.insert_run_deliveries(&made, 20).await.unwrap();
        let (all, total) = s.dispatches(&w.id, None, (0, 10), false).await.unwrap();
        assert_eq!((all.len(), total), (2, 2), "{}", b.name);
        let (of_h1, total) = s
            .dispatches(&w.id, Some("h1"), (0, 10), false)
            .await
            .unwrap();
        assert_eq!((of_h1.len(), total), (1, 1), "{}", b.name);
        assert_eq!(of_h1[0].webhook_id.as_deref(), Some("h1"));
        assert_eq!(of_h1[0].state, DeliveryState::Pending);
        let one = s.dispatch(&w.id, "r1.0.C").await.unwrap().unwrap();
        assert_eq!((one.webhook_id, one.created_at), (None, 20));
        assert!(s.dispatch("other", "r1.0.C").await.unwrap().is_none());
        let claimed = s.claim_run_delivery("r1.h1.C", 20, 100).await.unwrap();
        assert_eq!(claimed.unwrap().webhook_id.as_deref(), Some("h1"));
        b.finish().await;
    }
}
