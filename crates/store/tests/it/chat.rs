//! The turn's writes: `finish_turn` with and without an opening conversation, on
//! both engines.

use agentbase_core::conversation::{
    Conversation, ConversationStatus, CreditEntry, Message, MessageRole, Part,
};
use agentbase_core::{Plan, ids};
use agentbase_store::{NewTurn, TurnLease};

use crate::{agent, backends, workspace};

const MONTH: i64 = 1_000;

fn conversation(workspace_id: &str, agent_id: &str, at: i64) -> Conversation {
    Conversation {
        id: ids::uuid_v4(),
        workspace_id: workspace_id.into(),
        agent_id: agent_id.into(),
        user_id: Some("u1".into()),
        title: None,
        status: ConversationStatus::Ongoing,
        source: "API".into(),
        created_at: at,
        updated_at: at,
    }
}

fn message(conversation_id: &str, seq: i64, role: MessageRole, text: &str, at: i64) -> Message {
    Message {
        id: ids::message_id(),
        conversation_id: conversation_id.into(),
        seq,
        role,
        parts: vec![Part::Text { text: text.into() }],
        created_at: at,
        feedback: None,
        score: None,
        finish_reason: (role == MessageRole::Assistant).then(|| "stop".into()),
        credits: if role == MessageRole::Assistant {
            1.0
        } else {
            0.0
        },
        sources: Vec::new(),
        spam: false,
    }
}

fn turn(ws: &str, agent_id: &str, answer: Message, lease: Option<TurnLease>) -> NewTurn {
    NewTurn {
        opening: None,
        credit: Some(CreditEntry {
            id: ids::alphanumeric(20),
            workspace_id: ws.into(),
            agent_id: agent_id.into(),
            conversation_id: Some(answer.conversation_id.clone()),
            message_id: Some(answer.id.clone()),
            model: "scripted".into(),
            credits: 1.0,
            created_at: answer.created_at,
        }),
        agent_id: agent_id.into(),
        title: Some("hello".into()),
        month_start: MONTH,
        lease,
        message: answer,
    }
}

#[tokio::test]
async fn a_finished_turn_stores_the_answer_charge_and_activity_and_frees_the_conversation() {
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Standard, 1);
        s.insert_workspace(&w).await.unwrap();
        let a = agent(&w.id, 1);
        s.insert_agent(&a).await.unwrap();
        let c = conversation(&w.id, &a.id, 10);
        let question = message(&c.id, 1, MessageRole::User, "hello", 10);
        s.insert_conversation_with_message(&c, Some(("tok", 1_000_000)), &question)
            .await
            .unwrap();
        let lease = TurnLease {
            conversation_id: c.id.clone(),
            token: "tok".into(),
        };
        let answer = message(&c.id, 2, MessageRole::Assistant, "hi", 20);
        s.finish_turn(&turn(&w.id, &a.id, answer, Some(lease)))
            .await
            .unwrap();

        let stored = s.conversation(&w.id, &c.id).await.unwrap().unwrap();
        assert_eq!(
            (stored.updated_at, stored.title.as_deref()),
            (20, Some("hello")),
            "{}",
            b.name
        );
        assert_eq!(s.messages(&c.id).await.unwrap().len(), 2, "{}", b.name);
        assert_eq!(s.ledger(&w.id).await.unwrap().len(), 1, "{}", b.name);
        assert_eq!(s.workspace_credits(&w.id, MONTH).await.unwrap(), 1.0);
        assert_eq!(s.workspace_credits(&w.id, MONTH + 1).await.unwrap(), 0.0);
        let agent_row = s.agent(&w.id, &a.id).await.unwrap().unwrap();
        assert_eq!(agent_row.credits_used_in(MONTH), 1.0, "{}", b.name);
        assert_eq!(agent_row.last_message_at, Some(20), "{}", b.name);
        // The lease went with the answer: the next turn may take the conversation.
        assert!(
            s.acquire_turn(&c.id, "next", 30, 60_000)
                .await
                .unwrap()
                .is_some(),
            "{}",
            b.name
        );

        // Another turn's token releases nothing: the lease stays with its holder.
        let answer = message(&c.id, 3, MessageRole::Assistant, "again", 40);
        let stale = TurnLease {
            conversation_id: c.id.clone(),
            token: "tok".into(),
        };
        s.finish_turn(&turn(&w.id, &a.id, answer, Some(stale)))
            .await
            .unwrap();
        assert!(
            s.acquire_turn(&c.id, "third", 50, 60_000)
                .await
                .unwrap()
                .is_none(),
            "{}",
            b.name
        );

        // Renewal extends the holder's lease past its first expiry; another
        // token renews nothing, and a lease released or lost is not renewed.
        let next = TurnLease {
            conversation_id: c.id.clone(),
            token: "next".into(),
        };
        assert!(
            s.renew_turn(&next, 60_000, 60_000).await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            s.acquire_turn(&c.id, "late", 90_000, 60_000)
                .await
                .unwrap()
                .is_none(),
            "renewed: still held at 90 s ({})",
            b.name
        );
        let other = TurnLease {
            conversation_id: c.id.clone(),
            token: "other".into(),
        };
        assert!(
            !s.renew_turn(&other, 90_000, 60_000).await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            s.acquire_turn(&c.id, "later", 120_001, 60_000)
                .await
                .unwrap()
                .is_some(),
            "unrenewed: free once expired ({})",
            b.name
        );
        assert!(
            !s.renew_turn(&next, 120_002, 60_000).await.unwrap(),
            "{}",
            b.name
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn a_turn_that_opens_its_conversation_writes_it_with_both_messages() {
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Standard, 1);
        s.insert_workspace(&w).await.unwrap();
        let a = agent(&w.id, 1);
        s.insert_agent(&a).await.unwrap();
        let c = conversation(&w.id, &a.id, 10);
        let question = message(&c.id, 1, MessageRole::User, "hello", 10);
        let answer = message(&c.id, 2, MessageRole::Assistant, "hi", 20);
        let mut t = turn(&w.id, &a.id, answer, None);
        t.opening = Some((c.clone(), question.clone()));
        s.finish_turn(&t).await.unwrap();

        let stored = s.conversation(&w.id, &c.id).await.unwrap().unwrap();
        assert_eq!(
            (
                stored.created_at,
                stored.updated_at,
                stored.title.as_deref()
            ),
            (10, 20, Some("hello")),
            "{}",
            b.name
        );
        let messages = s.messages(&c.id).await.unwrap();
        assert_eq!(
            messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
            [1, 2],
            "{}",
            b.name
        );
        assert_eq!(messages[0], question, "{}", b.name);
        assert_eq!(s.workspace_credits(&w.id, MONTH).await.unwrap(), 1.0);
        // Stored unleased.
        assert!(
            s.acquire_turn(&c.id, "next", 30, 60_000)
                .await
                .unwrap()
                .is_some(),
            "{}",
            b.name
        );
        // A failed turn writes nothing of it.
        let c2 = conversation(&w.id, &a.id, 40);
        let q2 = message(&c2.id, 1, MessageRole::User, "again", 40);
        let mut bad = turn(&w.id, &a.id, messages[1].clone(), None);
        bad.opening = Some((c2.clone(), q2));
        assert!(s.finish_turn(&bad).await.is_err(), "{}", b.name);
        assert!(
            s.conversation(&w.id, &c2.id).await.unwrap().is_none(),
            "{}",
            b.name
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn a_page_of_conversations_reads_its_messages_in_one_query_each_in_order() {
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Standard, 1);
        s.insert_workspace(&w).await.unwrap();
        let a = agent(&w.id, 1);
        s.insert_agent(&a).await.unwrap();
        let mut ids = Vec::new();
        for (i, n) in [3, 0, 2].into_iter().enumerate() {
            let c = conversation(&w.id, &a.id, 10 + i as i64);
            let first = message(&c.id, 1, MessageRole::User, "q", 10);
            s.insert_conversation_with_message(&c, None, &first)
                .await
                .unwrap();
            for seq in 2..=n {
                let m = message(&c.id, seq, MessageRole::Assistant, "a", 10 + seq);
                s.finish_turn(&turn(&w.id, &a.id, m, None)).await.unwrap();
            }
            ids.push(c.id);
        }
        // Asked in an order that is not the ids' sort order.
        ids.reverse();
        let got = s.messages_of(&ids).await.unwrap();
        let per: Vec<(String, i64)> = got
            .iter()
            .map(|m| (m.conversation_id.clone(), m.seq))
            .collect();
        // Each conversation's messages, as the one-conversation read gives them, in
        // the order asked.
        let mut want = Vec::new();
        for id in &ids {
            let own = s.messages(id).await.unwrap();
            want.extend(own.iter().map(|m| (m.conversation_id.clone(), m.seq)));
        }
        assert_eq!(per, want, "{}", b.name);
        assert_eq!(got.len(), 3 + 1 + 2, "{}", b.name);
        assert!(s.messages_of(&[]).await.unwrap().is_empty());
        assert!(s.tool_calls_of(&[]).await.unwrap().is_empty());
        assert!(
            s.tool_calls_of(&ids).await.unwrap().is_empty(),
            "{}",
            b.name
        );
    }
}
