use agentbase_core::Plan;

use crate::{api_key, backends, workspace};

#[tokio::test]
async fn a_key_is_found_with_its_workspace_plan_and_can_be_revoked_once() {
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Hobby, 1);
        s.insert_workspace(&w).await.unwrap();
        let (k, _) = api_key(&w.id);
        s.insert_key(&k).await.unwrap();

        let (found, plan) = s.key_for_auth(&k.id).await.unwrap().expect(b.name);
        assert_eq!(
            (found.clone(), plan),
            (k.clone(), Plan::Hobby),
            "{}",
            b.name
        );
        assert!(s.key_for_auth("nope").await.unwrap().is_none());

        assert!(s.revoke_key(&k.id, 50).await.unwrap(), "{}", b.name);
        assert!(
            !s.revoke_key(&k.id, 60).await.unwrap(),
            "second revoke is a no-op on {}",
            b.name
        );
        let (found, _) = s.key_for_auth(&k.id).await.unwrap().unwrap();
        assert_eq!(found.revoked_at, Some(50));

        s.touch_key(&k.id, 70).await.unwrap();
        assert_eq!(s.keys(Some(&w.id)).await.unwrap()[0].last_used_at, Some(70));
        b.finish().await;
    }
}

#[tokio::test]
async fn keys_list_by_workspace_and_plans_change() {
    for b in backends().await {
        let s = &b.store;
        let (w1, w2) = (workspace(Plan::Standard, 1), workspace(Plan::Free, 2));
        s.insert_workspace(&w1).await.unwrap();
        s.insert_workspace(&w2).await.unwrap();
        for w in [&w1, &w2, &w2] {
            s.insert_key(&api_key(&w.id).0).await.unwrap();
        }
        assert_eq!(s.keys(Some(&w1.id)).await.unwrap().len(), 1, "{}", b.name);
        assert_eq!(s.keys(Some(&w2.id)).await.unwrap().len(), 2);
        assert_eq!(s.keys(None).await.unwrap().len(), 3);

        assert!(s.set_plan(&w2.id, Plan::Enterprise).await.unwrap());
        assert!(!s.set_plan("ws_missing", Plan::Pro).await.unwrap());
        assert_eq!(
            s.workspace(&w2.id).await.unwrap().unwrap().plan,
            Plan::Enterprise,
            "{}",
            b.name
        );
        let listed: Vec<_> = s
            .workspaces()
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.id)
            .collect();
        assert_eq!(
            listed,
            vec![w1.id.clone(), w2.id.clone()],
            "oldest first on {}",
            b.name
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn a_key_must_belong_to_an_existing_workspace() {
    for b in backends().await {
        let (k, _) = api_key("ws_does_not_exist");
        assert!(
            b.store.insert_key(&k).await.is_err(),
            "foreign key enforced on {}",
            b.name
        );
        b.finish().await;
    }
}
