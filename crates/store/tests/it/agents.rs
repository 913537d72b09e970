use agentbase_core::{AgentStatus, Cursor, Plan, Visibility};
use serde_json::json;

use crate::{agent, backends, workspace};

#[tokio::test]
async fn every_agent_field_round_trips() {
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Standard, 1);
        s.insert_workspace(&w).await.unwrap();
        let mut a = agent(&w.id, 10);
        a.allowed_domains = Some(vec!["example.com".into()]);
        a.suggested_messages = Some(json!([{"type": "single", "text": "Hi", "order": 1}]));
        a.credit_limit = Some(500);
        a.visibility = Visibility::Public;
        a.auto_retrain = true;
        a.temp = 0.7;
        a.status = AgentStatus::Trained;
        a.last_trained_at = Some(20);
        a.instructions = "Ünïcødé ✓ and 'quotes'".into();
        s.insert_agent(&a).await.unwrap();
        assert_eq!(
            s.agent(&w.id, &a.id).await.unwrap(),
            Some(a.clone()),
            "{}",
            b.name
        );

        a.name = "renamed".into();
        a.allowed_domains = None;
        a.credit_limit = None;
        a.ip_rate_limits.limit = 3;
        assert!(s.update_agent(&a).await.unwrap());
        assert_eq!(
            s.agent(&w.id, &a.id).await.unwrap(),
            Some(a.clone()),
            "{}",
            b.name
        );
        // The widget's lookup (by id alone) reads the same row.
        assert_eq!(
            s.agent_by_id(&a.id).await.unwrap(),
            Some(a.clone()),
            "{}",
            b.name
        );
        assert_eq!(s.agent_by_id("missing").await.unwrap(), None);
        b.finish().await;
    }
}

#[tokio::test]
async fn agents_of_another_workspace_are_invisible() {
    for b in backends().await {
        let s = &b.store;
        let (mine, theirs) = (workspace(Plan::Standard, 1), workspace(Plan::Standard, 2));
        s.insert_workspace(&mine).await.unwrap();
        s.insert_workspace(&theirs).await.unwrap();
        let a = agent(&theirs.id, 5);
        s.insert_agent(&a).await.unwrap();

        assert_eq!(s.agent(&mine.id, &a.id).await.unwrap(), None, "{}", b.name);
        let mut forged = a.clone();
        forged.workspace_id = mine.id.clone();
        forged.name = "hijacked".into();
        assert!(!s.update_agent(&forged).await.unwrap(), "{}", b.name);
        assert!(
            !s.delete_agent(&mine.id, &a.id).await.unwrap(),
            "{}",
            b.name
        );
        assert_eq!(s.agents(&mine.id, None, 10).await.unwrap().total, 0);
        assert_eq!(
            s.agent(&theirs.id, &a.id).await.unwrap().unwrap().name,
            a.name
        );
        assert!(s.delete_agent(&theirs.id, &a.id).await.unwrap());
        assert_eq!(s.agent(&theirs.id, &a.id).await.unwrap(), None);
        b.finish().await;
    }
}

#[tokio::test]
async fn pages_walk_newest_first_without_gaps_or_repeats() {
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Standard, 1);
        s.insert_workspace(&w).await.unwrap();
        // Seven agents, two sharing a timestamp, so the id tie-break is exercised.
        let mut made = Vec::new();
        for t in [1, 2, 3, 3, 4, 5, 6] {
            let a = agent(&w.id, t);
            s.insert_agent(&a).await.unwrap();
            made.push(a);
        }
        made.sort_by(|x, y| (y.created_at, &y.id).cmp(&(x.created_at, &x.id)));

        let mut seen = Vec::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = s.agents(&w.id, cursor.as_ref(), 3).await.unwrap();
            assert_eq!(page.total, 7, "{}", b.name);
            assert!(page.items.len() <= 3);
            seen.extend(page.items.iter().map(|a| a.id.clone()));
            if !page.has_more {
                break;
            }
            let last = page.items.last().unwrap();
            cursor = Some(Cursor {
                t: last.created_at,
                id: last.id.clone(),
            });
        }
        let expected: Vec<_> = made.iter().map(|a| a.id.clone()).collect();
        assert_eq!(seen, expected, "{}", b.name);
        // Past the end: no row carries the total, which is still the workspace's.
        let oldest = made.last().unwrap();
        let past = Cursor {
            t: oldest.created_at,
            id: oldest.id.clone(),
        };
        let page = s.agents(&w.id, Some(&past), 3).await.unwrap();
        assert!(page.items.is_empty() && !page.has_more, "{}", b.name);
        assert_eq!(page.total, 7, "{}", b.name);
        b.finish().await;
    }
}

#[tokio::test]
async fn deleting_an_agent_twice_reports_it_gone_the_second_time() {
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Standard, 1);
        s.insert_workspace(&w).await.unwrap();
        let a = agent(&w.id, 1);
        s.insert_agent(&a).await.unwrap();
        assert!(s.delete_agent(&w.id, &a.id).await.unwrap());
        assert!(!s.delete_agent(&w.id, &a.id).await.unwrap(), "{}", b.name);
        b.finish().await;
    }
}

#[tokio::test]
async fn monthly_counters_start_at_zero() {
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Standard, 1);
        s.insert_workspace(&w).await.unwrap();
        let a = agent(&w.id, 1);
        s.insert_agent(&a).await.unwrap();
        let workspace = s.workspace_credits(&w.id, 1_000).await.unwrap();
        let agent = s.agent(&w.id, &a.id).await.unwrap().unwrap();
        assert_eq!(
            (workspace, agent.credits_used_in(1_000)),
            (0.0, 0.0),
            "{}",
            b.name
        );
        b.finish().await;
    }
}
