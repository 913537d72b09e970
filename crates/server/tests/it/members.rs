//! Workspace members over real HTTP: invited from the dashboard, choosing a
//! password through the one-time link, signing in by email, seeing and acting on
//! only their own workspaces and only as their role allows; removal and reset
//! ending their sessions; used and expired links refused; bad input explained.
//! The helpdesk's reads (`members`, `member_by_email`, `member_by_id`) too.

use agentbase_core::Plan;
use agentbase_core::member::{Acting, LINK_TTL_MS, Role};
use reqwest::StatusCode;
use reqwest::header::LOCATION;

use crate::dashboard::{Operator, attr_after, cookie_value, login_with, no_redirects, sign_in};
use crate::{TestApp, spawn};

pub(crate) const MEMBER_PASSWORD: &str = "members own password";

/// The token in a link page's URL (`…/dashboard/invite/<token>`).
fn token_in(html: &str) -> String {
    let at =
        html.find("/dashboard/invite/").expect("a link on the page") + "/dashboard/invite/".len();
    html[at..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// Opens a link page and posts its form; the response (303 with a session on
/// success).
pub(crate) async fn follow_link(
    t: &TestApp,
    token: &str,
    password: &str,
    confirm: &str,
) -> reqwest::Response {
    let path = format!("/dashboard/invite/{token}");
    let page = no_redirects().get(t.url(&path)).send().await.unwrap();
    // A page without the password form (gone, or a join page) sets no cookie:
    // then a pair of our own, as a client without the form would send.
    let (cookie, csrf) = match cookie_value(page.headers(), "agentbase_link") {
        Some(cookie) => {
            let html = page.text().await.unwrap();
            (cookie, attr_after(&html, "name=\"_csrf\"", "value"))
        }
        None => ("made-up".to_owned(), "made-up".to_owned()),
    };
    no_redirects()
        .post(t.url(&path))
        .header("cookie", format!("agentbase_link={cookie}"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", "Ann Example"),
            ("password", password),
            ("confirm", confirm),
        ])
        .send()
        .await
        .unwrap()
}

/// Accepts an invitation from `who`'s own session: the join page shows the
/// button to them, and the form lands in the workspace.
async fn join(who: &Operator, token: &str) -> reqwest::Response {
    let (status, page) = who.get(&format!("/dashboard/invite/{token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("/join"), "the join button: {page}");
    let r = who
        .post(&format!("/dashboard/invite/{token}/join"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    r
}

/// A member of `ws` with `role`, invited by the administrator and signed in
/// through their link.
pub(crate) async fn member_session(t: &TestApp, ws: &str, email: &str, role: &str) -> Operator {
    let invited = t
        .app
        .members()
        .invite_member(Acting::Administrator, ws, email, "", role)
        .await
        .unwrap();
    let r = follow_link(t, &invited.token, MEMBER_PASSWORD, MEMBER_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let cookie = cookie_value(r.headers(), "agentbase_session").expect("a session");
    Operator::with_cookie(t, cookie).await
}

async fn agent_in(t: &TestApp, key: &str) -> String {
    t.client_for(key)
        .create_agent(&agentbase_client::types::CreateAgentBody {
            name: "theirs".into(),
            model: Some("scripted".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn an_invited_member_signs_in_and_sees_only_their_workspace() {
    let t = spawn().await;
    let own_agent = t.scripted_agent().await;
    let (other_ws, other_key) = t.other_workspace(Plan::Standard).await;
    let other_agent = agent_in(&t, &other_key).await;
    let admin = sign_in(&t).await;

    // Invited from the dashboard: the link is on the page, once.
    let r = admin
        .post(
            &format!("/dashboard/w/{}/members", t.workspace_id),
            &[
                ("email", "Ann@Example.com"),
                ("name", "Ann"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert!(html.contains("ann@example.com invited as member"), "{html}");
    let token = token_in(&html);
    let (_, listed) = admin
        .get(&format!("/dashboard/w/{}/members", t.workspace_id))
        .await;
    assert!(
        listed.contains("invited") && !listed.contains(&token),
        "the link is shown once"
    );

    let (status, page) = no_redirects()
        .get(t.url(&format!("/dashboard/invite/{token}")))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(page.text().await.unwrap().contains("ann@example.com"));
    // Mismatched and short passwords are explained and use nothing up.
    let r = follow_link(&t, &token, MEMBER_PASSWORD, "something else!").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("The two passwords differ.")
    );
    let r = follow_link(&t, &token, "short", "short").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("at least 12 characters"));
    let r = follow_link(&t, &token, MEMBER_PASSWORD, MEMBER_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/dashboard/workspaces");
    let member =
        Operator::with_cookie(&t, cookie_value(r.headers(), "agentbase_session").unwrap()).await;

    // Their workspace only, with their role; no administrator's forms.
    let (_, html) = member.get("/dashboard/workspaces").await;
    assert!(
        html.contains(&t.workspace_id) && html.contains(">member<"),
        "{html}"
    );
    assert!(
        !html.contains(&other_ws),
        "another workspace is listed: {html}"
    );
    assert!(!html.contains("New workspace") && !html.contains("Change plan"));
    for path in [
        format!("/dashboard/w/{}/agents", t.workspace_id),
        format!("/dashboard/w/{}/agents/{own_agent}", t.workspace_id),
        format!(
            "/dashboard/w/{}/agents/{own_agent}/conversations",
            t.workspace_id
        ),
        format!("/dashboard/w/{}/usage", t.workspace_id),
        format!("/dashboard/w/{}/members", t.workspace_id),
    ] {
        assert_eq!(member.get(&path).await.0, StatusCode::OK, "{path}");
    }
    // Another workspace's pages do not exist for them; their own workspace's
    // path with another workspace's agent neither.
    for path in [
        format!("/dashboard/w/{other_ws}/agents"),
        format!("/dashboard/w/{other_ws}/agents/{other_agent}"),
        format!("/dashboard/w/{other_ws}/agents/{other_agent}/sources"),
        format!("/dashboard/w/{other_ws}/keys"),
        format!("/dashboard/w/{other_ws}/members"),
        format!("/dashboard/w/{}/agents/{other_agent}", t.workspace_id),
    ] {
        assert_eq!(member.get(&path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    // What their role does not allow is refused, and says why.
    let (status, html) = member
        .get(&format!("/dashboard/w/{}/keys", t.workspace_id))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("needs the admin role"), "{html}");
    for (path, fields) in [
        (
            format!("/dashboard/w/{}/keys", t.workspace_id),
            vec![("name", "mine")],
        ),
        (
            format!("/dashboard/w/{}/members", t.workspace_id),
            vec![("email", "eve@example.com"), ("role", "owner")],
        ),
        (
            format!("/dashboard/w/{}/plan", t.workspace_id),
            vec![("plan", "enterprise")],
        ),
        ("/dashboard/workspaces".to_owned(), vec![("name", "mine")]),
        (
            format!("/dashboard/w/{}/agents/{own_agent}/delete", t.workspace_id),
            vec![],
        ),
    ] {
        let r = member.post(&path, &fields).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(t.app.accounts().workspaces().await.unwrap().len(), 2);
    assert_eq!(
        t.app
            .accounts()
            .keys(Some(&t.workspace_id))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        t.app
            .members()
            .member_by_email(&t.workspace_id, "eve@example.com")
            .await
            .unwrap()
            .is_none()
    );
    // What it allows works: a member configures the workspace's agents.
    let html = member
        .post_and_follow(
            &format!("/dashboard/w/{}/agents", t.workspace_id),
            &[("name", "made by ann")],
        )
        .await;
    assert!(html.contains("made by ann"), "{html}");

    // Signing in again by email and password; a wrong one is refused alike for
    // unknown emails.
    let r = login_with(
        &t,
        &[("email", "ANN@example.com"), ("password", MEMBER_PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(cookie_value(r.headers(), "agentbase_session").is_some());
    for (email, password) in [
        ("ann@example.com", "not the password"),
        ("bob@example.com", MEMBER_PASSWORD),
    ] {
        let r = login_with(&t, &[("email", email), ("password", password)]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("That email and password do not match.")
        );
    }
    // A member's password is not the operator password.
    let r = login_with(&t, &[("password", MEMBER_PASSWORD)]).await;
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("That password is not right.")
    );

    // The administrator still sees and opens everything.
    let (_, html) = admin.get("/dashboard/workspaces").await;
    assert!(html.contains(&t.workspace_id) && html.contains(&other_ws));
    let (status, _) = admin
        .get(&format!("/dashboard/w/{other_ws}/agents/{other_agent}"))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_used_or_expired_link_is_refused() {
    let t = spawn().await;
    let invite = |email: &'static str| {
        let t = &t;
        async move {
            t.app
                .members()
                .invite_member(Acting::Administrator, &t.workspace_id, email, "", "admin")
                .await
                .unwrap()
                .token
        }
    };
    let token = invite("ann@example.com").await;
    let r = follow_link(&t, &token, MEMBER_PASSWORD, MEMBER_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Used: the page and the form are gone, and the password stays as chosen.
    let r = no_redirects()
        .get(t.url(&format!("/dashboard/invite/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("expired or was already used")
    );
    let r = follow_link(
        &t,
        &token,
        "someone elses password",
        "someone elses password",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        t.app
            .members()
            .member_sign_in("ann@example.com", MEMBER_PASSWORD)
            .await
            .unwrap()
            .is_some()
    );
    let err = t
        .app
        .members()
        .accept_link(&token, "someone elses password", None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("expired or was already used"),
        "{err}"
    );

    // Expired: a second after its seven days.
    let token = invite("bob@example.com").await;
    t.clock.advance_ms(LINK_TTL_MS + 1_000);
    let r = no_redirects()
        .get(t.url(&format!("/dashboard/invite/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let err = t
        .app
        .members()
        .accept_link(&token, MEMBER_PASSWORD, None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("expired or was already used"),
        "{err}"
    );
    assert!(
        t.app
            .members()
            .member_sign_in("bob@example.com", MEMBER_PASSWORD)
            .await
            .unwrap()
            .is_none()
    );
    // Unknown and malformed tokens are the same page.
    for token in ["nope", "x".repeat(500).as_str(), "%00"] {
        let r = no_redirects()
            .get(t.url(&format!("/dashboard/invite/{token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{token}");
    }
    // Without the form's own token (another site posting), nothing happens.
    let token = invite("cy@example.com").await;
    let r = no_redirects()
        .post(t.url(&format!("/dashboard/invite/{token}")))
        .form(&[("password", MEMBER_PASSWORD), ("confirm", MEMBER_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        t.app.members().open_link(&token).await.unwrap().is_some(),
        "still usable"
    );
}

#[tokio::test]
async fn a_removed_or_reset_members_session_stops_working() {
    let t = spawn().await;
    let admin = sign_in(&t).await;
    let ann = member_session(&t, &t.workspace_id, "ann@example.com", "member").await;
    let bob = member_session(&t, &t.workspace_id, "bob@example.com", "admin").await;
    let members = t.app.members().list(&t.workspace_id).await.unwrap();
    let ann_id = &members
        .iter()
        .find(|m| m.email == "ann@example.com")
        .unwrap()
        .id;
    let bob_id = &members
        .iter()
        .find(|m| m.email == "bob@example.com")
        .unwrap()
        .id;

    // An admin resets a member's password: her session ends, her old password
    // stops working, the new link sets a new one.
    let r = bob
        .post(
            &format!("/dashboard/w/{}/members/{ann_id}/reset", t.workspace_id),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = token_in(&r.text().await.unwrap());
    let (status, _) = ann.get("/dashboard/workspaces").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "signed out");
    assert!(
        t.app
            .members()
            .member_sign_in("ann@example.com", MEMBER_PASSWORD)
            .await
            .unwrap()
            .is_none()
    );
    let r = follow_link(&t, &token, "a brand new password", "a brand new password").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let ann =
        Operator::with_cookie(&t, cookie_value(r.headers(), "agentbase_session").unwrap()).await;

    // The administrator removes her: her next page goes to sign-in and her next
    // form is refused.
    let r = admin
        .post(
            &format!("/dashboard/w/{}/members/{ann_id}/remove", t.workspace_id),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()[LOCATION].to_str().unwrap().contains("ok="));
    let (status, _) = ann
        .get(&format!("/dashboard/w/{}/agents", t.workspace_id))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let r = ann
        .post(
            &format!("/dashboard/w/{}/agents", t.workspace_id),
            &[("name", "after removal")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        t.app
            .members()
            .member_sign_in("ann@example.com", "a brand new password")
            .await
            .unwrap()
            .is_none()
    );

    // Removed from one of two workspaces, a member keeps the other only.
    let (other_ws, _) = t.other_workspace(Plan::Standard).await;
    let invited = t
        .app
        .members()
        .invite_member(
            Acting::Administrator,
            &other_ws,
            "bob@example.com",
            "",
            "member",
        )
        .await
        .unwrap();
    join(&bob, &invited.token).await;
    let r = admin
        .post(
            &format!("/dashboard/w/{}/members/{bob_id}/remove", t.workspace_id),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        bob.get(&format!("/dashboard/w/{}/agents", t.workspace_id))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        bob.get(&format!("/dashboard/w/{other_ws}/agents")).await.0,
        StatusCode::OK
    );
}

/// An account is one person's in every workspace they belong to. An admin of one
/// workspace who adds an owner of another to it may not reset that account's
/// password (the link would hand over the other workspace too); the instance
/// administrator still may.
#[tokio::test]
async fn a_workspace_cannot_reset_an_account_that_belongs_to_other_workspaces() {
    let t = spawn().await;
    let (theirs, _) = t.other_workspace(Plan::Standard).await;
    let victim = member_session(&t, &theirs, "victim@example.com", "owner").await;
    let attacker = member_session(&t, &t.workspace_id, "attacker@example.com", "admin").await;
    let added = t
        .app
        .members()
        .invite_member(
            Acting::As(Role::Admin),
            &t.workspace_id,
            "victim@example.com",
            "",
            "member",
        )
        .await
        .unwrap();
    let r = attacker
        .post(
            &format!(
                "/dashboard/w/{}/members/{}/reset",
                t.workspace_id, added.member.id
            ),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.contains("error=") && location.contains("other%20workspaces"),
        "{location}"
    );
    // Nothing happened to the account.
    assert!(
        t.app
            .members()
            .member_sign_in("victim@example.com", MEMBER_PASSWORD)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        victim.get(&format!("/dashboard/w/{theirs}/agents")).await.0,
        StatusCode::OK
    );
    // The instance administrator can.
    t.app
        .members()
        .reset_member_password(Acting::Administrator, &t.workspace_id, "victim@example.com")
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_member_input_gets_a_clear_error() {
    let t = spawn().await;
    let admin = sign_in(&t).await;
    let path = format!("/dashboard/w/{}/members", t.workspace_id);
    t.app
        .members()
        .invite_member(
            Acting::Administrator,
            &t.workspace_id,
            "ann@example.com",
            "Ann",
            "owner",
        )
        .await
        .unwrap();
    for (fields, says) in [
        (
            vec![("email", "not-an-email"), ("role", "member")],
            "email: must be an email address",
        ),
        (vec![("role", "member")], "email: is required"),
        (
            vec![("email", "bob@example.com"), ("role", "root")],
            "role: must be one of owner, admin, member",
        ),
        (
            vec![("email", "ANN@example.com"), ("role", "admin")],
            "ann@example.com is already a member",
        ),
    ] {
        let html = admin.post_and_follow(&path, &fields).await;
        assert!(html.contains(says), "{fields:?}: {html}");
    }
    assert_eq!(
        t.app.members().list(&t.workspace_id).await.unwrap().len(),
        1
    );

    // An admin manages admins and members, not owners.
    let bob = member_session(&t, &t.workspace_id, "bob@example.com", "admin").await;
    let ann_id = t
        .app
        .members()
        .member_by_email(&t.workspace_id, "ann@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    for action in ["reset", "remove"] {
        let html = bob
            .post_and_follow(&format!("{path}/{ann_id}/{action}"), &[])
            .await;
        assert!(html.contains("your role may not"), "{action}: {html}");
    }
    let html = bob
        .post_and_follow(&path, &[("email", "cy@example.com"), ("role", "owner")])
        .await;
    assert!(html.contains("your role may not invite an owner"), "{html}");
    assert!(
        t.app
            .members()
            .member_by_email(&t.workspace_id, "ann@example.com")
            .await
            .unwrap()
            .is_some()
    );
    // Members of another workspace and unknown ids are not found, never a 500.
    let (other_ws, _) = t.other_workspace(Plan::Standard).await;
    let elsewhere = t
        .app
        .members()
        .invite_member(
            Acting::Administrator,
            &other_ws,
            "dee@example.com",
            "",
            "member",
        )
        .await
        .unwrap()
        .member
        .id;
    for id in [elsewhere.as_str(), "nobody", "%20"] {
        let html = admin
            .post_and_follow(&format!("{path}/{id}/remove"), &[])
            .await;
        assert!(
            html.contains("is not a member of this workspace"),
            "{id}: {html}"
        );
    }
    assert!(
        t.app
            .members()
            .member_by_id(&other_ws, &elsewhere)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn the_helpdesk_resolves_members_by_email_and_id_within_their_workspace() {
    let t = spawn().await;
    let (other_ws, _) = t.other_workspace(Plan::Standard).await;
    let by = Acting::Administrator;
    let ann = t
        .app
        .members()
        .invite_member(by, &t.workspace_id, "ann@example.com", "Ann", "owner")
        .await
        .unwrap()
        .member;
    t.app
        .members()
        .invite_member(by, &other_ws, "bob@example.com", "Bob", "member")
        .await
        .unwrap();
    let listed = t.app.members().list(&t.workspace_id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].email.as_str(), listed[0].role),
        ("ann@example.com", Role::Owner)
    );
    // The id is a UUID (the helpdesk's "platform user id").
    assert_eq!(ann.id.len(), 36);
    assert_eq!(ann.id.matches('-').count(), 4);
    let found = t
        .app
        .members()
        .member_by_email(&t.workspace_id, " ANN@Example.COM")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, ann.id);
    assert_eq!(
        t.app
            .members()
            .member_by_id(&t.workspace_id, &ann.id)
            .await
            .unwrap()
            .unwrap()
            .email,
        "ann@example.com"
    );
    assert!(
        t.app
            .members()
            .member_by_email(&t.workspace_id, "bob@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        t.app
            .members()
            .member_by_email(&t.workspace_id, "not an email")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        t.app
            .members()
            .member_by_id(&other_ws, &ann.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        t.app
            .members()
            .member_by_id(&t.workspace_id, "ann@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

/// An invitation for an account that already has a password neither lets anyone
/// in nor changes the account: the email's owner accepts it from their own
/// session. Until then the account is not in the workspace, and the admin is told
/// the same as for a new email.
#[tokio::test]
async fn an_existing_account_joins_only_by_accepting_from_its_own_session() {
    let t = spawn().await;
    let (theirs, _) = t.other_workspace(Plan::Standard).await;
    let ann = member_session(&t, &theirs, "ann@example.com", "owner").await;
    let admin = member_session(&t, &t.workspace_id, "admin@example.com", "admin").await;
    let ws = t.workspace_id.clone();
    let r = admin
        .post(
            &format!("/dashboard/w/{ws}/members"),
            &[("email", "ann@example.com"), ("role", "member")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("ann@example.com invited as member."),
        "{html}"
    );
    assert!(!html.contains("already has an account"), "{html}");
    let token = token_in(&html);
    assert_eq!(
        ann.get(&format!("/dashboard/w/{ws}/agents")).await.0,
        StatusCode::NOT_FOUND,
        "not in before accepting"
    );
    let (_, listed) = admin.get(&format!("/dashboard/w/{ws}/members")).await;
    assert!(listed.contains("invited"), "{listed}");

    // Whoever holds the link cannot choose the account's password with it.
    let r = follow_link(
        &t,
        &token,
        "the link holder's pick",
        "the link holder's pick",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("sign in to accept"));
    // Without a session, or with another account's, the page only offers to sign in.
    let page = no_redirects()
        .get(t.url(&format!("/dashboard/invite/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Sign in as ann@example.com") && !page.contains("/join"),
        "{page}"
    );
    let (_, page) = admin.get(&format!("/dashboard/invite/{token}")).await;
    assert!(!page.contains("/join"), "{page}");
    let r = admin
        .post(&format!("/dashboard/invite/{token}/join"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("invitation for another account"),
        "another account cannot join with it"
    );
    assert_eq!(
        ann.get(&format!("/dashboard/w/{ws}/agents")).await.0,
        StatusCode::NOT_FOUND
    );

    // Ann accepts from her own session: she is in, with her password unchanged.
    let r = join(&ann, &token).await;
    assert_eq!(r.headers()[LOCATION], format!("/dashboard/w/{ws}"));
    assert_eq!(
        ann.get(&format!("/dashboard/w/{ws}/agents")).await.0,
        StatusCode::OK
    );
    assert!(
        t.app
            .members()
            .member_sign_in("ann@example.com", MEMBER_PASSWORD)
            .await
            .unwrap()
            .is_some()
    );
    // The link works once.
    let (status, _) = ann.get(&format!("/dashboard/invite/{token}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
