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
