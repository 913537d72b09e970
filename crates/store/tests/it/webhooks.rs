//! The webhook outbox on both engines: events reach only the endpoints that asked
//! for them, a delivery is claimed by one worker at a time, and an attempt's end
//! and its log line are written together.

use agentbase_core::webhook::{
    Attempt, CONVERSATION_STARTED, DeliveryState, LEADS_SUBMIT, OutboxEvent, Webhook,
};
use agentbase_core::{Plan, ids};
use agentbase_store::AttemptOutcome;

use crate::{agent, backends, workspace};

fn hook(ws: &str, agent_id: &str, events: &[&str], active: bool) -> Webhook {
    Webhook {
        id: ids::alphanumeric(20),
        workspace_id: ws.into(),
        agent_id: agent_id.into(),
        url: "https://hooks.example.com/in".into(),
        secret: "s3cret".into(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        active,
        created_at: 1,
        updated_at: 1,
    }
}

#[tokio::test]
async fn events_reach_the_active_endpoints_that_asked_for_them_once_each() {
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Standard, 1);
        s.insert_workspace(&w).await.unwrap();
        let a = agent(&w.id, 1);
        s.insert_agent(&a).await.unwrap();
        let wants = hook(&w.id, &a.id, &[LEADS_SUBMIT, CONVERSATION_STARTED], true);
        let other = hook(&w.id, &a.id, &[CONVERSATION_STARTED], true);
        let off = hook(&w.id, &a.id, &[LEADS_SUBMIT], false);
        for h in [&wants, &other, &off] {
            assert!(s.insert_webhook(h, 20).await.unwrap());
        }
        // The bound holds in the insert itself.
        assert!(
            !s.insert_webhook(&hook(&w.id, &a.id, &[LEADS_SUBMIT], true), 3)
                .await
                .unwrap()
        );

        let ev = OutboxEvent::new(
            &a.id,
            LEADS_SUBMIT,
            serde_json::json!({"customerName": "Ann"}),
        );
        assert_eq!(s.enqueue_event(&ev, 100).await.unwrap(), 1, "{}", b.name);
        // Written twice (a retried transaction, say): still one delivery.
        assert_eq!(s.enqueue_event(&ev, 100).await.unwrap(), 0, "{}", b.name);
        let due = s.due_deliveries(100, 10).await.unwrap();
        assert_eq!(due.len(), 1, "{}", b.name);
        assert!(s.due_deliveries(99, 10).await.unwrap().is_empty());

        let claimed = s
            .claim_delivery(&due[0], 100, 10_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.url, wants.url);
        assert_eq!(claimed.secret, "s3cret");
        assert_eq!(claimed.delivery.body, ev.body);
        assert_eq!(claimed.delivery.event_id, ev.id);
        assert_eq!(claimed.delivery.attempts, 1);
        // Leased: neither due nor claimable again until the lease runs out.
        assert!(
            s.claim_delivery(&due[0], 100, 10_000)
                .await
                .unwrap()
                .is_none()
        );
        assert!(s.due_deliveries(5_000, 10).await.unwrap().is_empty());

        s.finish_attempt(
            &due[0],
            &AttemptOutcome {
                state: DeliveryState::Pending,
                next_attempt_at: 700,
                attempt: Attempt {
                    attempt: 1,
                    started_at: 100,
                    duration_ms: 5,
                    status_code: Some(500),
                    error: Some("the endpoint answered 500".into()),
                },
            },
        )
        .await
        .unwrap();
        assert!(s.due_deliveries(699, 10).await.unwrap().is_empty());
        assert_eq!(s.due_deliveries(700, 10).await.unwrap(), due);
        let again = s
            .claim_delivery(&due[0], 700, 10_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.delivery.attempts, 2);
        s.finish_attempt(
            &due[0],
            &AttemptOutcome {
                state: DeliveryState::Delivered,
                next_attempt_at: 700,
                attempt: Attempt {
                    attempt: 2,
                    started_at: 700,
                    duration_ms: 3,
                    status_code: Some(204),
                    error: None,
                },
            },
        )
        .await
        .unwrap();
        assert!(s.due_deliveries(i64::MAX / 2, 10).await.unwrap().is_empty());

        let page = s.deliveries(&w.id, &wants.id, None, 10).await.unwrap();
        assert_eq!(page.total, 1);
        let d = &page.items[0];
        assert_eq!(d.state, DeliveryState::Delivered);
        assert_eq!(d.finished_at, Some(703));
        assert_eq!(d.last_status, Some(204));
        let log = s.delivery_attempts(&d.id).await.unwrap();
        assert_eq!(
            log.iter().map(|a| a.status_code).collect::<Vec<_>>(),
            [Some(500), Some(204)]
        );
        // Another workspace sees no deliveries of this endpoint.
        assert_eq!(
            s.deliveries("other", &wants.id, None, 10)
                .await
                .unwrap()
                .total,
            0
        );
        assert!(
            s.deliveries(&w.id, &other.id, None, 10)
                .await
                .unwrap()
                .items
                .is_empty()
        );

        // A paused endpoint's deliveries wait until it is active again.
        let ev = OutboxEvent::new(&a.id, CONVERSATION_STARTED, serde_json::json!({}));
        assert_eq!(s.enqueue_event(&ev, 800).await.unwrap(), 2);

        // Retention: a finished delivery goes with its attempts once it finished
        // before the cut; pending ones stay whatever their age.
        assert_eq!(s.prune_deliveries(703, 100).await.unwrap(), 0, "{}", b.name);
        assert_eq!(s.prune_deliveries(704, 100).await.unwrap(), 1, "{}", b.name);
        let left = s.deliveries(&w.id, &wants.id, None, 10).await.unwrap();
        assert_eq!(left.total, 1, "the pending one of the event at 800");
        assert_eq!(left.items[0].state, DeliveryState::Pending);
        assert!(s.delivery_attempts(&d.id).await.unwrap().is_empty());
        assert_eq!(s.prune_deliveries(i64::MAX, 100).await.unwrap(), 0);
        assert_eq!(s.due_deliveries(800, 10).await.unwrap().len(), 2);
        let mut paused = other.clone();
        paused.active = false;
        assert!(s.update_webhook(&paused).await.unwrap());
        assert_eq!(s.due_deliveries(800, 10).await.unwrap().len(), 1);
        // Deleting the agent takes its endpoints and their deliveries.
        assert!(s.delete_agent(&w.id, &a.id).await.unwrap());
        assert!(s.webhooks(&w.id, &a.id).await.unwrap().is_empty());
        assert!(s.due_deliveries(i64::MAX / 2, 10).await.unwrap().is_empty());
        b.finish().await;
    }
}

/// A workspace with a backlog of due deliveries does not stand in front of
/// another's: the deliveries are taken in turns by workspace, each one's oldest
/// first.
#[tokio::test]
async fn due_deliveries_take_turns_by_workspace() {
    for b in backends().await {
        let s = &b.store;
        let (busy, quiet) = (workspace(Plan::Standard, 1), workspace(Plan::Standard, 2));
        let mut hooks = Vec::new();
        for (n, w) in [(1, &busy), (2, &quiet)] {
            s.insert_workspace(w).await.unwrap();
            let a = agent(&w.id, n);
            s.insert_agent(&a).await.unwrap();
            assert!(
                s.insert_webhook(&hook(&w.id, &a.id, &[LEADS_SUBMIT], true), 20)
                    .await
                    .unwrap()
            );
            hooks.push(a.id);
        }
        for at in 0..20 {
            let ev = OutboxEvent::new(&hooks[0], LEADS_SUBMIT, serde_json::json!({"n": at}));
            s.enqueue_event(&ev, 100 + at).await.unwrap();
        }
        let late = OutboxEvent::new(&hooks[1], LEADS_SUBMIT, serde_json::json!({"n": "late"}));
        s.enqueue_event(&late, 500).await.unwrap();
        let due = s.due_deliveries(1_000, 4).await.unwrap();
        assert_eq!(due.len(), 4, "{}", b.name);
        let mut agents = Vec::new();
        for id in &due {
            let claimed = s.claim_delivery(id, 1_000, 2_000).await.unwrap().unwrap();
            agents.push(claimed.delivery.agent_id.clone());
        }
        assert_eq!(
            agents,
            [&hooks[0], &hooks[1], &hooks[0], &hooks[0]].map(String::clone),
            "{}: the busy workspace's oldest, then the quiet one's, then the rest",
            b.name
        );
        b.finish().await;
    }
}
