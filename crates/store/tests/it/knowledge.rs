use agentbase_core::knowledge::{
    JobStatus, Source, SourceContent, SourceStatus, StoredChunk, TrainingJob,
};
use agentbase_core::{AgentStatus, Plan};
use agentbase_store::{JobKinds, TrainingSwitch};

use crate::{agent, backends, workspace};

fn source(agent_id: &str, id: &str, text: &str) -> Source {
    Source {
        id: id.into(),
        agent_id: agent_id.into(),
        name: "Policy".into(),
        content: SourceContent::Text {
            content: text.into(),
        },
        size: text.len() as i64,
        status: SourceStatus::Untrained,
        generation: 0,
        error: None,
        crawl_status: None,
        pages: 0,
        created_at: 1,
        updated_at: 1,
        trained_at: None,
    }
}

fn job(agent_id: &str, source_id: &str, id: &str, at: i64) -> TrainingJob {
    TrainingJob {
        id: id.into(),
        agent_id: agent_id.into(),
        source_id: source_id.into(),
        status: JobStatus::Queued,
        done: 0,
        total: 0,
        stage: "queued".into(),
        error: None,
        attempts: 0,
        created_at: at,
        updated_at: at,
    }
}

fn chunk(source_id: &str, id: &str, text: &str) -> StoredChunk {
    StoredChunk {
        id: id.into(),
        source_id: source_id.into(),
        title: "Policy".into(),
        url: None,
        heading: "Refunds".into(),
        text: text.into(),
        embedding: vec![0.6, -0.8, 0.0],
    }
}

#[tokio::test]
async fn generations_switch_atomically_and_a_failed_training_leaves_the_live_one() {
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Standard, 1);
        s.insert_workspace(&w).await.unwrap();
        let a = agent(&w.id, 1);
        s.insert_agent(&a).await.unwrap();
        let src = source(&a.id, "src1", "Refunds take five days.");
        s.insert_source(&src, "id1", &job(&a.id, "src1", "job1", 10))
            .await
            .unwrap();
        let got = s.agent(&w.id, &a.id).await.unwrap().unwrap();
        assert_eq!(got.status, AgentStatus::Training, "{}", b.name);
        assert_eq!(got.size, src.size);

        // One running job per source; the claim is the node's.
        let j = s
            .claim_job("node-a", 100, 30_000, (10, JobKinds::All))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((j.id.as_str(), j.attempts), ("job1", 1));
        assert!(
            s.claim_job("node-b", 100, 30_000, (10, JobKinds::All))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            s.job_progress("job1", "node-a", ("embedding", 0, 1), 30_100, 100)
                .await
                .unwrap()
        );
        assert!(
            !s.job_progress("job1", "node-b", ("embedding", 0, 1), 30_100, 100)
                .await
                .unwrap()
        );

        s.insert_chunks(
            &a.id,
            5,
            0,
            &[chunk("src1", "c1", "Refunds take five days.")],
        )
        .await
        .unwrap();
        assert!(
            s.live_chunks(&a.id).await.unwrap().is_empty(),
            "not live before the switch"
        );
        let switch = TrainingSwitch {
            job_id: "job1".into(),
            agent_id: a.id.clone(),
            source_id: "src1".into(),
            generation: 5,
            now: 200,
        };
        assert!(s.switch_generation(&switch).await.unwrap());
        let live = s.live_chunks(&a.id).await.unwrap();
        assert_eq!(live.len(), 1, "{}", b.name);
        assert_eq!(live[0].embedding, vec![0.6, -0.8, 0.0]);
        let got = s.agent(&w.id, &a.id).await.unwrap().unwrap();
        assert_eq!(
            (got.kb_version, got.status),
            (1, AgentStatus::Trained),
            "{}",
            b.name
        );
        assert_eq!(got.last_trained_at, Some(200));
        assert_eq!(
            s.job("job1").await.unwrap().unwrap().status,
            JobStatus::Succeeded
        );

        // A newer training fails half-way: its chunks go, the live ones stay.
        s.enqueue_job(&job(&a.id, "src1", "job2", 300))
            .await
            .unwrap();
        let j2 = s
            .claim_job("node-a", 300, 30_000, (10, JobKinds::All))
            .await
            .unwrap()
            .unwrap();
        s.insert_chunks(&a.id, 9, 0, &[chunk("src1", "c2", "Half written.")])
            .await
            .unwrap();
        s.fail_job(&j2, Some(9), "embedding failed", 310)
            .await
            .unwrap();
        let live = s.live_chunks(&a.id).await.unwrap();
        assert_eq!(
            live.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            vec!["c1"],
            "{}",
            b.name
        );
        let src = s.source(&a.id, "src1").await.unwrap().unwrap();
        assert_eq!(
            (src.status, src.error.as_deref()),
            (SourceStatus::Failed, Some("embedding failed"))
        );
        assert_eq!(src.generation, 5);
        let got = s.agent(&w.id, &a.id).await.unwrap().unwrap();
        assert_eq!((got.kb_version, got.status), (1, AgentStatus::Failed));

        // An older generation finishing late never replaces a newer live one.
        let stale = TrainingSwitch {
            generation: 3,
            job_id: "job2".into(),
            ..switch
        };
        s.insert_chunks(&a.id, 3, 0, &[chunk("src1", "c3", "Stale.")])
            .await
            .unwrap();
        assert!(!s.switch_generation(&stale).await.unwrap());
        assert_eq!(s.live_chunks(&a.id).await.unwrap()[0].id, "c1");

        // Deleting the source takes its knowledge at once.
        assert!(s.delete_source(&a.id, "src1", 400).await.unwrap());
        assert!(s.live_chunks(&a.id).await.unwrap().is_empty());
        let got = s.agent(&w.id, &a.id).await.unwrap().unwrap();
        assert_eq!((got.kb_version, got.size), (2, 0), "{}", b.name);
    }
}

#[tokio::test]
async fn a_job_whose_node_died_is_taken_again_when_its_lease_runs_out() {
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Standard, 1);
        s.insert_workspace(&w).await.unwrap();
        let a = agent(&w.id, 1);
        s.insert_agent(&a).await.unwrap();
        s.insert_source(&source(&a.id, "s", "x"), "id", &job(&a.id, "s", "j", 1))
            .await
            .unwrap();
        let first = s
            .claim_job("dies", 1_000, 30_000, (10, JobKinds::All))
            .await
            .unwrap()
            .unwrap();
        assert!(
            s.claim_job("survivor", 30_999, 30_000, (10, JobKinds::All))
                .await
                .unwrap()
                .is_none()
        );
        let again = s
            .claim_job("survivor", 31_001, 30_000, (10, JobKinds::All))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((again.id, again.attempts), (first.id, 2), "{}", b.name);
        // The dead node's late progress report is refused.
        assert!(
            !s.job_progress("j", "dies", ("embedding", 1, 2), 99_999, 31_002)
                .await
                .unwrap()
        );
    }
}

#[tokio::test]
async fn jobs_are_claimed_fairly_across_workspaces() {
    for b in backends().await {
        let s = &b.store;
        let busy = workspace(Plan::Standard, 1);
        let quiet = workspace(Plan::Standard, 2);
        s.insert_workspace(&busy).await.unwrap();
        s.insert_workspace(&quiet).await.unwrap();
        let a = agent(&busy.id, 1);
        let q = agent(&quiet.id, 2);
        s.insert_agent(&a).await.unwrap();
        s.insert_agent(&q).await.unwrap();
        // The busy workspace queued three jobs before the quiet one queued its one.
        for i in 0..3 {
            let id = format!("busy{i}");
            s.insert_source(
                &source(&a.id, &id, &format!("text {i}")),
                &format!("c{id}"),
                &job(&a.id, &id, &format!("job-{id}"), 10 + i),
            )
            .await
            .unwrap();
        }
        s.insert_source(
            &source(&q.id, "quiet0", "quiet text"),
            "cquiet0",
            &job(&q.id, "quiet0", "job-quiet0", 20),
        )
        .await
        .unwrap();
        let claim = || async {
            s.claim_job("node", 100, 30_000, (2, JobKinds::All))
                .await
                .unwrap()
                .map(|j| j.id)
        };
        // Oldest first while both run nothing; then the workspace running fewer.
        assert_eq!(claim().await.as_deref(), Some("job-busy0"), "{}", b.name);
        assert_eq!(claim().await.as_deref(), Some("job-quiet0"), "{}", b.name);
        assert_eq!(claim().await.as_deref(), Some("job-busy1"), "{}", b.name);
        // The busy workspace now runs two, its allowance: its third job waits.
        assert_eq!(claim().await, None, "{}", b.name);
    }
}

/// A claim takes website sources' jobs or the others' as asked, so a node can run
/// them under separate slots (websites wait on their sites before they embed).
#[tokio::test]
async fn claims_take_website_jobs_or_the_others_as_asked() {
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Standard, 1);
        s.insert_workspace(&w).await.unwrap();
        let a = agent(&w.id, 1);
        s.insert_agent(&a).await.unwrap();
        let site = Source {
            content: SourceContent::Link {
                url: "https://example.com/".into(),
                options: serde_json::from_value(serde_json::json!({"linkType": "crawl"})).unwrap(),
            },
            ..source(&a.id, "site", "")
        };
        s.insert_source(&site, "id-site", &job(&a.id, "site", "job-site", 10))
            .await
            .unwrap();
        let text = source(&a.id, "text", "Refunds take five days.");
        s.insert_source(&text, "id-text", &job(&a.id, "text", "job-text", 20))
            .await
            .unwrap();
        let claim = |kinds| s.claim_job("node", 100, 30_000, (10, kinds));
        let other = claim(JobKinds::Others).await.unwrap().unwrap();
        assert_eq!(other.id, "job-text", "{}", b.name);
        assert!(claim(JobKinds::Others).await.unwrap().is_none());
        let website = claim(JobKinds::Websites).await.unwrap().unwrap();
        assert_eq!(website.id, "job-site", "{}", b.name);
        assert!(claim(JobKinds::All).await.unwrap().is_none());
        b.finish().await;
    }
}
