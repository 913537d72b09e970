use crate::backends;

#[tokio::test]
async fn opening_twice_applies_migrations_once_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    let store = agentbase_store::open(&url, 2).await.unwrap();
    let w = crate::workspace(agentbase_core::Plan::Pro, 5);
    store.insert_workspace(&w).await.unwrap();
    store.close().await;
    let again = agentbase_store::open(&url, 2).await.unwrap();
    assert_eq!(again.workspaces().await.unwrap(), vec![w]);
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let store = agentbase_store::open(&format!("sqlite://{}", path.display()), 2)
        .await
        .unwrap();
    store
        .insert_workspace(&crate::workspace(agentbase_core::Plan::Free, 1))
        .await
        .unwrap();
    assert!(
        dir.path().join("wal.db-wal").exists(),
        "a -wal file exists beside the database"
    );
}

#[tokio::test]
async fn an_unknown_url_scheme_is_a_clear_error() {
    let err = agentbase_store::open("mysql://x", 1).await.unwrap_err();
    assert!(err.to_string().contains("database.url"), "{err}");
}

#[tokio::test]
async fn both_engines_start_from_the_same_migrations() {
    for b in backends().await {
        assert!(b.store.workspaces().await.unwrap().is_empty(), "{}", b.name);
        b.finish().await;
    }
}

#[tokio::test]
async fn the_wal_is_checkpointed_beside_the_writer_not_inside_its_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.db");
    let store = agentbase_store::open(&format!("sqlite://{}", path.display()), 2)
        .await
        .unwrap();
    // Let the checkpointer settle what the migrations wrote.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let before = std::fs::metadata(&path).unwrap().len();
    // About 2 MB of rows: ~500 WAL pages, each commit well under SQLite's
    // automatic threshold of 1,000 pages, which the writer has off anyway.
    for i in 0..400 {
        let mut w = crate::workspace(agentbase_core::Plan::Free, i);
        w.name = "x".repeat(5_000);
        store.insert_workspace(&w).await.unwrap();
    }
    // Within a few ticks the rows reach the database file without anyone asking.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = std::fs::metadata(&path).unwrap().len();
        if now > before + 1_000_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file stayed at {now} bytes (from {before})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(store.workspaces().await.unwrap().len(), 400);
    store.close().await;
}
