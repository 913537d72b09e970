use agentbase_store::DashboardSession;

use crate::backends;

fn session(id: &str, created_at: i64, expires_at: i64) -> DashboardSession {
    DashboardSession {
        id: id.to_owned(),
        csrf_token: format!("csrf-{id}"),
        created_at,
        expires_at,
        member_id: None,
    }
}

#[tokio::test]
async fn the_admin_password_is_set_once_at_init_and_replacing_it_ends_sessions() {
    for b in backends().await {
        let s = &b.store;
        assert_eq!(s.admin_password_hash().await.unwrap(), None, "{}", b.name);
        assert!(s.init_admin_password_hash("first").await.unwrap());
        // A second node starting with its own generated password keeps the first.
        assert!(!s.init_admin_password_hash("second").await.unwrap());
        assert_eq!(
            s.admin_password_hash().await.unwrap().as_deref(),
            Some("first")
        );

        s.insert_session(&session("a", 10, 1_000)).await.unwrap();
        assert!(s.session("a", 20).await.unwrap().is_some(), "{}", b.name);
        s.set_admin_password_hash("replaced").await.unwrap();
        assert_eq!(
            s.admin_password_hash().await.unwrap().as_deref(),
            Some("replaced")
        );
        assert!(s.session("a", 20).await.unwrap().is_none(), "{}", b.name);
        b.finish().await;
    }
}

#[tokio::test]
async fn sessions_expire_can_be_ended_and_expired_rows_are_swept() {
    for b in backends().await {
        let s = &b.store;
        s.insert_session(&session("old", 10, 100)).await.unwrap();
        s.insert_session(&session("live", 20, 1_000)).await.unwrap();
        assert_eq!(
            s.session("live", 50).await.unwrap(),
            Some(session("live", 20, 1_000)),
            "{}",
            b.name
        );
        assert!(
            s.session("old", 100).await.unwrap().is_none(),
            "expired at 100"
        );
        assert!(s.session("missing", 50).await.unwrap().is_none());
        // A new sign-in sweeps expired rows: "old" is gone even for an earlier clock.
        s.insert_session(&session("new", 500, 2_000)).await.unwrap();
        assert!(s.session("old", 50).await.unwrap().is_none(), "{}", b.name);
        s.delete_session("live").await.unwrap();
        assert!(s.session("live", 50).await.unwrap().is_none(), "{}", b.name);
        assert!(s.session("new", 600).await.unwrap().is_some());
        b.finish().await;
    }
}
