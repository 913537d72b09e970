//! Operator tools: the schema read without migrating, and the online SQLite snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use agentbase_core::Plan;
use sqlx::Connection;

use crate::backends;

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn the_schema_is_read_on_both_engines_without_changing_anything() {
    for b in backends().await {
        let state = agentbase_store::schema_state(&b.url, TIMEOUT)
            .await
            .unwrap();
        assert!(state.is_current(), "{}: {state:?}", b.name);
        assert_eq!(
            state.known,
            agentbase_store::MIGRATIONS.last().unwrap().0,
            "{}",
            b.name
        );
        b.finish().await;
    }

    // A missing SQLite file is reported, not created.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.db");
    let err = agentbase_store::schema_state(&format!("sqlite://{}", path.display()), TIMEOUT)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no database"), "{err}");
    assert!(!path.exists());

    // A database behind this binary is seen as such.
    let path = dir.path().join("behind.db");
    let url = format!("sqlite://{}", path.display());
    agentbase_store::open(&url, 1).await.unwrap().close().await;
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let state = agentbase_store::schema_state(&url, TIMEOUT).await.unwrap();
    // Versions may skip numbers: "behind" is any applied version below the newest.
    assert!(state.applied.is_some_and(|v| v < state.known), "{state:?}");
    assert!(!state.is_current());
}

#[tokio::test]
async fn a_sqlite_snapshot_holds_every_commit_made_before_it_while_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("live.db").display());
    let store = agentbase_store::open(&url, 4).await.unwrap();
    let committed = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, committed, stop) = (store.clone(), committed.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                store
                    .insert_workspace(&crate::workspace(Plan::Free, i))
                    .await
                    .unwrap();
                i += 1;
                committed.store(i, Ordering::SeqCst);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = committed.load(Ordering::SeqCst);
    let copy = dir.path().join("copy.db");
    let state = agentbase_store::snapshot_sqlite(&url, &copy).await.unwrap();
    let after = committed.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(
        committed.load(Ordering::SeqCst) > after,
        "writes went on after the snapshot"
    );

    assert!(state.is_current(), "{state:?}");
    let counts = agentbase_store::record_counts(&format!("sqlite://{}", copy.display()))
        .await
        .unwrap();
    // (The counter trails the commit it counts by one poll of the writer task.)
    assert!(
        counts.workspaces >= before && counts.workspaces <= after + 1,
        "the copy has {} workspaces; {before} were committed before it began, {after} after it ended",
        counts.workspaces
    );

    // Never over an existing file, and never of PostgreSQL.
    assert!(agentbase_store::snapshot_sqlite(&url, &copy).await.is_err());
    let err = agentbase_store::snapshot_sqlite("postgres://u:p@127.0.0.1:1/x", &copy)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("pg_dump"), "{err}");
}
