//! Members' record on both engines: one account per email across workspaces, a
//! duplicate membership refused, links used once and only before they expire,
//! resets and removals ending the member's sessions.

use agentbase_core::member::{LinkKind, Role};
use agentbase_core::{Error, Plan};
use agentbase_store::{DashboardSession, NewLink, NewMember};

use crate::{backends, workspace};

fn link(id: &str, kind: LinkKind, expires_at: i64) -> NewLink {
    NewLink {
        id: id.to_owned(),
        kind,
        expires_at,
    }
}

fn session(id: &str, at: i64) -> DashboardSession {
    DashboardSession {
        id: id.to_owned(),
        csrf_token: format!("csrf-{id}"),
        created_at: at,
        expires_at: at + 1_000_000,
        member_id: None,
    }
}

#[tokio::test]
async fn members_links_and_sessions_keep_their_rules_on_both_engines() {
    for b in backends().await {
        let s = &b.store;
        let (w1, w2) = (workspace(Plan::Standard, 1), workspace(Plan::Standard, 2));
        s.insert_workspace(&w1).await.unwrap();
        s.insert_workspace(&w2).await.unwrap();

        let added = s
            .add_member(
                &w1.id,
                &NewMember {
                    new_id: "id-ann",
                    email: "ann@example.com",
                    name: "Ann",
                    role: Role::Admin,
                },
                &link("l1", LinkKind::Invite, 100),
                10,
            )
            .await
            .unwrap();
        assert!(!added.active, "{}", b.name);
        assert_eq!(
            s.member_role(&w1.id, "id-ann").await.unwrap(),
            None,
            "invited, not in yet"
        );
        let dup = s
            .add_member(
                &w1.id,
                &NewMember {
                    new_id: "id-other",
                    email: "ann@example.com",
                    name: "Ann",
                    role: Role::Member,
                },
                &link("l2", LinkKind::Invite, 100),
                10,
            )
            .await;
        assert!(
            matches!(dup, Err(Error::Conflict(_))),
            "{}: {dup:?}",
            b.name
        );
        assert!(
            s.open_link("l2", 20).await.unwrap().is_none(),
            "the refused invite stored no link"
        );

        // The link opens before it expires, once.
        assert!(
            s.open_link("l1", 100).await.unwrap().is_none(),
            "expired at 100"
        );
        let open = s.open_link("l1", 20).await.unwrap().expect("open");
        assert_eq!(
            (open.kind, open.account.email.as_str()),
            (LinkKind::Invite, "ann@example.com")
        );
        assert_eq!(
            s.use_link("l1", "hash", Some("Ann A."), &session("s1", 200))
                .await
                .unwrap(),
            None,
            "expired"
        );
        let used = s
            .use_link("l1", "hash", Some("Ann A."), &session("s1", 30))
            .await
            .unwrap();
        assert_eq!(used.as_deref(), Some("id-ann"), "{}", b.name);
        assert_eq!(
            s.use_link("l1", "hash2", None, &session("s2", 31))
                .await
                .unwrap(),
            None,
            "used"
        );
        assert_eq!(
            s.session("s1", 40)
                .await
                .unwrap()
                .unwrap()
                .member_id
                .as_deref(),
            Some("id-ann")
        );
        assert_eq!(
            s.member_password("ann@example.com").await.unwrap(),
            Some(("id-ann".into(), Some("hash".into())))
        );

        assert_eq!(
            s.member_role(&w1.id, "id-ann").await.unwrap(),
            Some(Role::Admin),
            "in once the link is followed"
        );

        // The same person is invited to a second workspace: the same account, and
        // in only once they join from their own session.
        let again = s
            .add_member(
                &w2.id,
                &NewMember {
                    new_id: "id-new",
                    email: "ann@example.com",
                    name: "x",
                    role: Role::Member,
                },
                &link("l3", LinkKind::Invite, 100),
                50,
            )
            .await
            .unwrap();
        assert_eq!(again.id, "id-ann");
        assert!(!again.active);
        assert_eq!(s.member_workspaces("id-ann").await.unwrap().len(), 1);
        assert_eq!(s.member_role(&w2.id, "id-ann").await.unwrap(), None);
        assert_eq!(
            s.use_link("l3", "taken", None, &session("s9", 51))
                .await
                .unwrap(),
            None,
            "an invitation does not set an existing account's password"
        );
        assert!(
            s.join_by_link("l3", "id-other", 52)
                .await
                .unwrap()
                .is_none()
        );
        assert!(s.join_by_link("l3", "id-ann", 100).await.unwrap().is_none());
        let joined = s.join_by_link("l3", "id-ann", 53).await.unwrap().unwrap();
        assert_eq!(joined.workspace_id, w2.id, "{}", b.name);
        assert!(s.join_by_link("l3", "id-ann", 54).await.unwrap().is_none());
        assert_eq!(
            s.member_password("ann@example.com").await.unwrap(),
            Some(("id-ann".into(), Some("hash".into()))),
            "the password is still hers"
        );
        assert_eq!(s.member_workspaces("id-ann").await.unwrap().len(), 2);
        assert_eq!(
            s.member_role(&w2.id, "id-ann").await.unwrap(),
            Some(Role::Member)
        );
        let found = s
            .workspace_member(&w1.id, "ann@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((found.name.as_str(), found.role), ("Ann A.", Role::Admin));

        // A new operator password leaves members signed in.
        s.set_admin_password_hash("op").await.unwrap();
        assert!(s.session("s1", 60).await.unwrap().is_some(), "{}", b.name);

        // A reset clears the password and ends the member's sessions.
        s.reset_member(&w1.id, "id-ann", &link("l4", LinkKind::Reset, 1_000), 70)
            .await
            .unwrap();
        assert!(s.session("s1", 71).await.unwrap().is_none());
        assert_eq!(
            s.member_password("ann@example.com").await.unwrap(),
            Some(("id-ann".into(), None))
        );
        assert_eq!(
            s.open_link("l4", 72).await.unwrap().unwrap().kind,
            LinkKind::Reset
        );
        s.use_link("l4", "hash3", None, &session("s3", 80))
            .await
            .unwrap()
            .unwrap();

        // Removal from one workspace keeps the account; from the last, deletes it.
        assert!(s.remove_member(&w1.id, "id-ann").await.unwrap());
        assert!(!s.remove_member(&w1.id, "id-ann").await.unwrap());
        assert!(s.session("s3", 90).await.unwrap().is_some(), "still in w2");
        assert!(s.remove_member(&w2.id, "id-ann").await.unwrap());
        assert!(s.session("s3", 91).await.unwrap().is_none(), "{}", b.name);
        assert!(s.member_account("id-ann").await.unwrap().is_none());
        assert!(s.workspace_members(&w2.id).await.unwrap().is_empty());
        b.finish().await;
    }
}
