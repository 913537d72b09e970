//! Contacts on both engines: the unique indexes (external id, email whatever its
//! case) surface as the API's conflicts, lookups by external id win over ids, paging
//! is stable, the identity secret is replaced in place, and every read is scoped to
//! its workspace and agent.

use agentbase_core::contact::{AttributeType, Contact, CustomAttribute};
use agentbase_core::{Error, Plan, ids};
use agentbase_store::VisitorIdentity;
use serde_json::json;

use crate::{agent, backends, workspace};

fn contact(ws: &str, agent_id: &str, external_id: &str, email: Option<&str>) -> Contact {
    Contact {
        id: ids::uuid_v4(),
        workspace_id: ws.into(),
        agent_id: agent_id.into(),
        external_id: external_id.into(),
        name: Some("Ann".into()),
        email: email.map(str::to_owned),
        phonenumber: None,
        stripe_accounts: vec![json!({"label": "main", "stripe_id": "cus_1"})],
        custom_attributes: json!({"plan": "pro", "age": 41})
            .as_object()
            .unwrap()
            .clone(),
        created_at: 1_000,
        updated_at: 1_000,
    }
}

#[tokio::test]
async fn contacts_round_trip_and_unique_indexes_are_conflicts() {
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Standard, 1);
        s.insert_workspace(&w).await.unwrap();
        let a = agent(&w.id, 1);
        s.insert_agent(&a).await.unwrap();
        let other_ws = workspace(Plan::Standard, 1);
        s.insert_workspace(&other_ws).await.unwrap();

        let ann = contact(&w.id, &a.id, "u1", Some("ann@example.com"));
        let bo = contact(&w.id, &a.id, "u2", None);
        s.save_contacts(&[ann.clone(), bo.clone()], &[])
            .await
            .unwrap();
        assert_eq!(
            s.count_contacts(&w.id, &a.id).await.unwrap(),
            2,
            "{}",
            b.name
        );
        assert_eq!(
            s.contact(&w.id, &a.id, "u1").await.unwrap(),
            Some(ann.clone())
        );
        assert_eq!(
            s.contact(&w.id, &a.id, &bo.id).await.unwrap(),
            Some(bo.clone())
        );
        // Scoped: another workspace sees nothing.
        assert_eq!(s.contact(&other_ws.id, &a.id, "u1").await.unwrap(), None);
        assert_eq!(s.count_contacts(&other_ws.id, &a.id).await.unwrap(), 0);

        let clash = |r: agentbase_core::Result<()>| match r {
            Err(Error::Conflict(m)) => m,
            other => panic!("{}: a conflict, got {other:?}", b.name),
        };
        let same_email = contact(&w.id, &a.id, "u3", Some("ANN@example.com"));
        assert_eq!(
            clash(s.save_contacts(&[same_email], &[]).await),
            "Email already exists"
        );
        let same_id = contact(&w.id, &a.id, "u1", None);
        assert_eq!(
            clash(s.save_contacts(&[same_id], &[]).await),
            "External ID already exists"
        );
        // Nothing of a refused batch stays.
        let fresh = contact(&w.id, &a.id, "u4", None);
        let dup = contact(&w.id, &a.id, "u1", None);
        clash(s.save_contacts(&[fresh, dup], &[]).await);
        assert_eq!(
            s.count_contacts(&w.id, &a.id).await.unwrap(),
            2,
            "{}",
            b.name
        );

        // Paging is stable: by time, then id.
        let page1 = s.contacts(&w.id, &a.id, 0, 1).await.unwrap();
        let page2 = s.contacts(&w.id, &a.id, 1, 1).await.unwrap();
        assert_eq!(page1.len() + page2.len(), 2);
        assert_ne!(page1[0].id, page2[0].id);

        let mut moved = bo.clone();
        moved.email = Some("bo@example.com".into());
        moved.updated_at = 2_000;
        assert!(s.update_contact(&moved).await.unwrap());
        assert_eq!(s.contact(&w.id, &a.id, "u2").await.unwrap(), Some(moved));
        let found = s
            .contacts_by_external_id(&w.id, &a.id, &["u1".into(), "nobody".into()])
            .await
            .unwrap();
        assert_eq!(found, vec![ann.clone()]);
        assert!(
            !s.delete_contact(&other_ws.id, &a.id, &ann.id)
                .await
                .unwrap()
        );
        assert!(s.delete_contact(&w.id, &a.id, &ann.id).await.unwrap());
        assert_eq!(s.contact(&w.id, &a.id, "u1").await.unwrap(), None);
        b.finish().await;
    }
}

#[tokio::test]
async fn attributes_secrets_and_visitors_are_kept_per_agent() {
    for b in backends().await {
        let s = &b.store;
        let w = workspace(Plan::Standard, 1);
        s.insert_workspace(&w).await.unwrap();
        let a = agent(&w.id, 1);
        s.insert_agent(&a).await.unwrap();
        let mut attr = CustomAttribute {
            name: "plan".into(),
            label: "Plan".into(),
            kind: AttributeType::Text,
            description: None,
            archived: false,
            created_at: 1,
            updated_at: 1,
        };
        s.insert_contact_attribute(&w.id, &a.id, &attr)
            .await
            .unwrap();
        match s.insert_contact_attribute(&w.id, &a.id, &attr).await {
            Err(Error::Conflict(m)) => assert_eq!(m, "Custom attribute already exists"),
            other => panic!("{}: {other:?}", b.name),
        }
        attr.archived = true;
        attr.description = Some("billing".into());
        assert!(
            s.update_contact_attribute(&w.id, &a.id, &attr)
                .await
                .unwrap()
        );
        assert_eq!(
            s.contact_attributes(&w.id, &a.id).await.unwrap(),
            vec![attr.clone()]
        );

        assert_eq!(s.identity_secret(&w.id, &a.id).await.unwrap(), None);
        s.set_identity_secret(&w.id, &a.id, "one", 5).await.unwrap();
        s.set_identity_secret(&w.id, &a.id, "two", 6).await.unwrap();
        assert_eq!(
            s.identity_secret(&w.id, &a.id).await.unwrap(),
            Some(("two".into(), 6))
        );

        let v = VisitorIdentity {
            user_id: "user-1".into(),
            metadata: Some("{\"company\":\"Acme\"}".into()),
        };
        s.set_visitor_identity(&w.id, &a.id, &v, 7).await.unwrap();
        let v2 = VisitorIdentity {
            metadata: None,
            ..v.clone()
        };
        s.set_visitor_identity(&w.id, &a.id, &v2, 8).await.unwrap();
        assert_eq!(
            s.visitor_identity(&w.id, &a.id, "user-1").await.unwrap(),
            Some(v2)
        );
        assert_eq!(
            s.visitor_identity(&w.id, &a.id, "user-2").await.unwrap(),
            None
        );

        // Deleting the agent takes all of it along.
        s.save_contacts(&[contact(&w.id, &a.id, "u1", None)], &[])
            .await
            .unwrap();
        assert!(s.delete_agent(&w.id, &a.id).await.unwrap());
        assert_eq!(s.count_contacts(&w.id, &a.id).await.unwrap(), 0);
        assert!(s.contact_attributes(&w.id, &a.id).await.unwrap().is_empty());
        assert_eq!(s.identity_secret(&w.id, &a.id).await.unwrap(), None);
        assert_eq!(
            s.visitor_identity(&w.id, &a.id, "user-1").await.unwrap(),
            None
        );
        b.finish().await;
    }
}
