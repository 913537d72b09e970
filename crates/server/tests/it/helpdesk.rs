//! The helpdesk and the human handoff end to end: the v2 helpdesk operations in the
//! official spec's shapes (every required key, bare bodies, paging, filters), each
//! endpoint's bad input refused with a 4xx in the envelope, and the handoff flow
//! over HTTP: the visitor asks for a person in the widget, the AI falls silent, an
//! operator's reply reaches a live widget subscriber, the API shows who answered,
//! handing back makes the AI answer again, and the webhooks hear of it all.

use agentbase_core::Plan;
use agentbase_core::member::Acting;
use reqwest::Method;
use serde_json::{Value, json};

use crate::webhooks::{create_hook, loopback_allowed, receiver, wait_for};
use crate::{TestApp, frames, outcome, spawn, spawn_full, spawn_with};

const VISITOR: &str = "v_handoff_visitor_1";

/// Invites `email` to the test workspace; the member's id (assignees and reply
/// authors must be members of the workspace).
async fn member(t: &TestApp, email: &str, name: &str) -> String {
    t.app
        .members()
        .invite_member(
            Acting::Administrator,
            &t.workspace_id,
            email,
            name,
            "member",
        )
        .await
        .unwrap()
        .member
        .id
}

async fn call(t: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = t.raw(method, &format!("/api/v2/agents/{path}"));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let (status, _, body) = outcome(r.send().await.unwrap()).await;
    (status, body)
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

const TICKET_KEYS: &[&str] = &[
    "assigneeId",
    "channel",
    "conversationId",
    "createdAt",
    "customer",
    "description",
    "lastMessageAt",
    "metadata",
    "priority",
    "statusCategory",
    "statusId",
    "subject",
    "teamId",
    "ticketNumber",
    "updatedAt",
];

fn is_iso(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        agentbase_core::time_fmt::parse_date_bound(s, false).is_some() && s.contains('T')
    })
}

/// A ticket as the spec's `Ticket` (all 15 keys), or `TicketListItem` (13).
fn assert_ticket(t: &Value, list_item: bool) {
    let mut want: Vec<&str> = TICKET_KEYS.to_vec();
    if list_item {
        want.retain(|k| *k != "description" && *k != "metadata");
    }
    assert_eq!(keys(t), want, "{t}");
    assert!(t["ticketNumber"].as_i64().unwrap() > 0);
    assert!(agentbase_core::helpdesk::CATEGORIES.contains(&t["statusCategory"].as_str().unwrap()));
    assert!(agentbase_core::helpdesk::PRIORITIES.contains(&t["priority"].as_str().unwrap()));
    assert!(agentbase_core::helpdesk::CHANNELS.contains(&t["channel"].as_str().unwrap()));
    assert_eq!(keys(&t["customer"]), ["email", "id", "name", "phoneNumber"]);
    assert!(is_iso(&t["createdAt"]) && is_iso(&t["updatedAt"]), "{t}");
    assert!(t["lastMessageAt"].is_null() || is_iso(&t["lastMessageAt"]));
    if !list_item {
        assert!(t["metadata"].is_object());
    }
}

fn assert_thread_message(m: &Value) {
    let mut want = vec![
        "attachments",
        "content",
        "contentText",
        "createdAt",
        "id",
        "sender",
        "type",
    ];
    if m["type"] == "event" {
        want.push("metadata");
        want.sort();
        assert!(m["sender"].is_null() && m["content"].is_null(), "{m}");
        assert!(m["metadata"]["eventType"].is_string(), "{m}");
    } else {
        assert_eq!(keys(&m["sender"]), ["email", "id", "name", "type"], "{m}");
    }
    assert_eq!(keys(m), want, "{m}");
    assert_eq!(m["attachments"], json!([]));
}

/// A bad-input row: method, path under `/api/v2/agents/`, body, status, code and
/// the field `details` must name.
type BadRow = (
    Method,
    String,
    Option<Value>,
    u16,
    &'static str,
    Option<&'static str>,
);

/// Creates a ticket a second after the last thing, so orders by time are strict.
async fn create_ticket(t: &TestApp, agent: &str, body: Value) -> Value {
    t.clock.advance_ms(1000);
    let (s, b) = call(
        t,
        Method::POST,
        &format!("{agent}/helpdesk/tickets"),
        Some(body),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b
}

#[tokio::test]
async fn statuses_and_teams_have_the_spec_shapes() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let (s, statuses) = call(
        &t,
        Method::GET,
        &format!("{agent}/helpdesk/ticket-statuses"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{statuses}");
    let statuses = statuses.as_array().unwrap();
    let categories: Vec<&str> = statuses
        .iter()
        .map(|x| x["category"].as_str().unwrap())
        .collect();
    assert_eq!(
        categories,
        agentbase_core::helpdesk::CATEGORIES,
        "ordered by category"
    );
    for st in statuses {
        assert_eq!(
            keys(st),
            [
                "category",
                "color",
                "externalLabel",
                "id",
                "internalLabel",
                "isDefault",
                "position"
            ]
        );
        assert_eq!(st["isDefault"], true, "one default per category");
        assert!(agentbase_core::helpdesk::is_uuid(
            st["id"].as_str().unwrap()
        ));
        let c = st["color"].as_str().unwrap();
        assert!(c.starts_with('#') && c.len() == 7, "{c}");
    }
    // Statuses are stable across reads (seeded once).
    let (_, again) = call(
        &t,
        Method::GET,
        &format!("{agent}/helpdesk/ticket-statuses"),
        None,
    )
    .await;
    assert_eq!(again.as_array().unwrap(), statuses);
    let (s, teams) = call(&t, Method::GET, &format!("{agent}/helpdesk/teams"), None).await;
    assert_eq!(s, 200);
    let teams = teams.as_array().unwrap();
    assert_eq!(teams.len(), 1);
    assert_eq!(keys(&teams[0]), ["id", "isDefault", "memberCount", "name"]);
    assert_eq!(teams[0]["isDefault"], true);
    assert_eq!(teams[0]["memberCount"], 0);
    // The default team is the workspace's members, who tickets can be assigned to.
    member(&t, "ann@example.com", "Ann").await;
    member(&t, "bob@example.com", "Bob").await;
    let (_, teams) = call(&t, Method::GET, &format!("{agent}/helpdesk/teams"), None).await;
    assert_eq!(teams[0]["memberCount"], 2, "{teams}");
}

#[tokio::test]
async fn tickets_are_created_listed_searched_read_and_updated_as_the_spec_says() {
    tickets_as_the_spec_says(spawn_with(|s| s.rate_limit.requests = 1_000_000).await).await;
}

#[tokio::test]
async fn tickets_are_created_listed_searched_read_and_updated_on_postgres() {
    let Some(url) = crate::sources::fresh_postgres().await else {
        return;
    };
    let t = spawn_full(
        |s| s.rate_limit.requests = 1_000_000,
        &agentbase_service::models::Providers::new(),
        None,
        Some(&url),
    )
    .await;
    tickets_as_the_spec_says(t).await;
}

async fn tickets_as_the_spec_says(t: TestApp) {
    let agent = t.scripted_agent().await;
    let first = create_ticket(
        &t,
        &agent,
        json!({"subject": "Refund please", "description": "My order #12 arrived broken, I want a refund.",
               "customer": {"email": "Ann@Example.com", "name": "Ann"}}),
    )
    .await;
    assert_ticket(&first, false);
    assert_eq!(first["ticketNumber"], 1);
    assert_eq!(first["statusCategory"], "new");
    assert_eq!(first["priority"], "none");
    assert_eq!(first["channel"], "helpdesk");
    assert_eq!(first["conversationId"], Value::Null);
    assert_eq!(first["customer"]["email"], "ann@example.com");
    assert_eq!(first["customer"]["name"], "Ann");
    let (_, teams) = call(&t, Method::GET, &format!("{agent}/helpdesk/teams"), None).await;
    let team = teams[0]["id"].as_str().unwrap().to_owned();
    let assignee = member(&t, "agent@example.com", "Agent Smith").await;
    let assignee = assignee.as_str();
    // Assignees are members of the workspace: a stranger, by id or email, is refused.
    let (other_ws, _) = t.other_workspace(Plan::Standard).await;
    t.app
        .members()
        .invite_member(
            Acting::Administrator,
            &other_ws,
            "eve@example.com",
            "Eve",
            "member",
        )
        .await
        .unwrap();
    for who in [
        json!({"assigneeId": "123e4567-e89b-42d3-a456-426614174000"}),
        json!({"assigneeEmail": "nobody@example.com"}),
        json!({"assigneeEmail": "eve@example.com"}),
    ] {
        let mut body =
            json!({"subject": "s", "description": "d", "customer": {"email": "c@example.com"}});
        body.as_object_mut()
            .unwrap()
            .extend(who.as_object().unwrap().clone());
        let (s, e) = call(
            &t,
            Method::POST,
            &format!("{agent}/helpdesk/tickets"),
            Some(body),
        )
        .await;
        assert_eq!(s, 422, "{e}");
        assert_eq!(e["error"]["code"], "TICKET_TEAM_MEMBER_NOT_FOUND", "{e}");
    }
    let second = create_ticket(
        &t,
        &agent,
        json!({"subject": "Login trouble", "description": "I cannot sign in.",
               "customer": {"email": "bob@example.com"}, "statusCategory": "on_hold",
               "priority": "high", "teamId": team, "assigneeId": assignee}),
    )
    .await;
    assert_eq!(second["ticketNumber"], 2);
    assert_eq!(second["statusCategory"], "on_hold");
    assert_eq!(second["teamId"], team.as_str());
    assert_eq!(second["assigneeId"], assignee);

    // Lists: newest update first, list items without description and metadata.
    let (s, list) = call(&t, Method::GET, &format!("{agent}/helpdesk/tickets"), None).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(keys(&list), ["data", "pagination"]);
    assert_eq!(
        keys(&list["pagination"]),
        ["cursor", "hasMore"],
        "no total unless asked"
    );
    let numbers: Vec<i64> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            assert_ticket(x, true);
            x["ticketNumber"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(numbers, [2, 1]);
    for (query, want) in [
        ("status=on_hold", vec![2]),
        ("status=new,closed", vec![1]),
        ("priority=none", vec![1]),
        (&format!("teamId={team}") as &str, vec![2]),
        ("teamId=none", vec![1]),
        (&format!("assigneeId={assignee}"), vec![2]),
        ("assigneeId=none", vec![1]),
        ("channel=helpdesk&sortBy=createdAt&order=asc", vec![1, 2]),
        ("createdAfter=2999-01-01T00:00:00Z", vec![]),
    ] {
        let (s, l) = call(
            &t,
            Method::GET,
            &format!("{agent}/helpdesk/tickets?{query}"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{query}: {l}");
        let got: Vec<i64> = l["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["ticketNumber"].as_i64().unwrap())
            .collect();
        assert_eq!(got, want, "{query}");
    }
    // Paging with a cursor, and the total on request.
    let (_, p1) = call(
        &t,
        Method::GET,
        &format!("{agent}/helpdesk/tickets?limit=1&includeTotal=true"),
        None,
    )
    .await;
    assert_eq!(p1["pagination"]["hasMore"], true);
    assert_eq!(p1["pagination"]["total"], 2);
    let cursor = p1["pagination"]["cursor"].as_str().unwrap().to_owned();
    let (_, p2) = call(
        &t,
        Method::GET,
        &format!("{agent}/helpdesk/tickets?limit=1&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(p2["data"][0]["ticketNumber"], 1);
    assert_eq!(p2["pagination"]["hasMore"], false);
    assert_eq!(p2["pagination"]["cursor"], Value::Null);
    // A cursor is valid only for the order it was issued for.
    let (s, b) = call(
        &t,
        Method::GET,
        &format!("{agent}/helpdesk/tickets?limit=1&sortBy=createdAt&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("VALIDATION_INVALID_BODY"))
    );

    // Search ranks by mentions over subjects and messages; not paginated.
    let (s, found) = call(
        &t,
        Method::POST,
        &format!("{agent}/helpdesk/tickets/search"),
        Some(json!({"query": "refund broken"})),
    )
    .await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    assert_ticket(&found["data"][0], true);
    assert_eq!(found["data"][0]["ticketNumber"], 1);
    assert_eq!(
        found["pagination"],
        json!({"cursor": null, "hasMore": false})
    );
    let (_, none) = call(
        &t,
        Method::POST,
        &format!("{agent}/helpdesk/tickets/search"),
        Some(json!({"query": "100%_nothing"})),
    )
    .await;
    assert_eq!(none["data"], json!([]));

    // Read, then update every field; omitted fields stay.
    let (s, got) = call(
        &t,
        Method::GET,
        &format!("{agent}/helpdesk/tickets/1"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(got, first);
    t.clock.advance_ms(1000);
    let (s, updated) = call(
        &t,
        Method::PATCH,
        &format!("{agent}/helpdesk/tickets/1"),
        Some(
            json!({"statusCategory": "on_you", "priority": "urgent", "teamId": team,
                    "assigneeEmail": "Agent@Example.com"}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{updated}");
    assert_ticket(&updated, false);
    assert_eq!(updated["statusCategory"], "on_you");
    assert_eq!(updated["priority"], "urgent");
    assert_eq!(updated["teamId"], team.as_str());
    assert_eq!(updated["subject"], "Refund please");
    assert_eq!(
        updated["assigneeId"], assignee,
        "the email resolved to the member"
    );
    let (_, cleared) = call(
        &t,
        Method::PATCH,
        &format!("{agent}/helpdesk/tickets/1"),
        Some(json!({"teamId": null, "assigneeId": null})),
    )
    .await;
    assert_eq!(cleared["teamId"], Value::Null);
    assert_eq!(cleared["assigneeId"], Value::Null);
    assert_eq!(cleared["priority"], "urgent");

    // The thread: the description is the customer's first reply; events are opt-in.
    let (s, thread) = call(
        &t,
        Method::GET,
        &format!("{agent}/helpdesk/tickets/1/messages"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{thread}");
    assert_eq!(keys(&thread["pagination"]), ["cursor", "hasMore", "total"]);
    assert_eq!(thread["pagination"]["total"], 1);
    let m = &thread["data"][0];
    assert_thread_message(m);
    assert_eq!(m["type"], "reply");
    assert_eq!(m["sender"]["type"], "customer");
    assert_eq!(m["sender"]["email"], "ann@example.com");
    assert_eq!(
        m["contentText"],
        "My order #12 arrived broken, I want a refund."
    );
    let (_, with_events) = call(
        &t,
        Method::GET,
        &format!("{agent}/helpdesk/tickets/1/messages?types=reply,event"),
        None,
    )
    .await;
    let data = with_events["data"].as_array().unwrap();
    assert!(data.iter().any(|m| m["type"] == "event"
        && m["metadata"]["eventType"] == "status_change"
        && m["metadata"]["statusTo"] == "on_you"));
    data.iter().for_each(assert_thread_message);

    // A reply to a ticket without a live conversation: rendered, attributed.
    t.clock.advance_ms(1000);
    let (s, reply) = call(
        &t,
        Method::POST,
        &format!("{agent}/helpdesk/tickets/1/messages"),
        Some(
            json!({"type": "reply", "content": "We are on it.\n<script>x</script>Thanks",
                    "authorEmail": "Agent@Example.com"}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{reply}");
    assert_eq!(
        keys(&reply),
        [
            "content",
            "contentText",
            "createdAt",
            "id",
            "sender",
            "type"
        ]
    );
    assert_eq!(reply["type"], "reply");
    assert_eq!(reply["content"], "<p>We are on it.<br>xThanks</p>");
    assert_eq!(reply["sender"]["type"], "agent");
    assert_eq!(reply["sender"]["email"], "agent@example.com");
    assert_eq!(reply["sender"]["id"], assignee);
    assert_eq!(reply["sender"]["name"], "Agent Smith");
    let (s, e) = call(
        &t,
        Method::POST,
        &format!("{agent}/helpdesk/tickets/1/messages"),
        Some(json!({"type": "reply", "content": "hi", "authorEmail": "nobody@example.com"})),
    )
    .await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(e["error"]["code"], "TEAM_MEMBER_NOT_FOUND", "{e}");
    let (_, after) = call(
        &t,
        Method::GET,
        &format!("{agent}/helpdesk/tickets/1"),
        None,
    )
    .await;
    assert_eq!(
        after["statusCategory"], "on_customer",
        "a reply waits on the customer"
    );
    // Thread paging, newest first.
    let (_, desc) = call(
        &t,
        Method::GET,
        &format!("{agent}/helpdesk/tickets/1/messages?order=desc&limit=1"),
        None,
    )
    .await;
    assert_eq!(desc["data"][0]["id"], reply["id"]);
    assert_eq!(desc["pagination"]["hasMore"], true);
    let c = desc["pagination"]["cursor"].as_str().unwrap();
    let (_, rest) = call(
        &t,
        Method::GET,
        &format!("{agent}/helpdesk/tickets/1/messages?order=desc&limit=1&cursor={c}"),
        None,
    )
    .await;
    assert_eq!(rest["data"][0]["sender"]["type"], "customer");
    assert_eq!(rest["pagination"]["hasMore"], false);
}

#[tokio::test]
async fn bad_helpdesk_input_is_refused_with_4xx_in_the_envelope() {
    let t = spawn_with(|s| s.rate_limit.requests = 1_000_000).await;
    member(&t, "a@b.co", "A").await;
    let agent = t.scripted_agent().await;
    create_ticket(
        &t,
        &agent,
        json!({"subject": "s", "description": "d", "customer": {"email": "a@b.co"}}),
    )
    .await;
    let a = agent.as_str();
    let long = "x".repeat(501);
    let uuid = "123e4567-e89b-42d3-a456-426614174000";
    let rows: Vec<BadRow> = vec![
        (
            Method::POST,
            format!("{a}/helpdesk/tickets"),
            Some(json!({})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("subject"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets"),
            Some(json!({"subject": long, "description": "d", "customer": {"email": "a@b.co"}})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("subject"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets"),
            Some(json!({"subject": "s", "description": "d", "customer": {"email": "nope"}})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("customer.email"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets"),
            Some(json!({"subject": "s", "description": "d"})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("customer.email"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets"),
            Some(
                json!({"subject": "s", "description": "d", "customer": {"email": "a@b.co"}, "statusId": "x"}),
            ),
            400,
            "VALIDATION_INVALID_BODY",
            Some("statusId"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets"),
            Some(
                json!({"subject": "s", "description": "d", "customer": {"email": "a@b.co"}, "statusId": uuid}),
            ),
            422,
            "TICKET_INVALID_STATUS",
            None,
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets"),
            Some(
                json!({"subject": "s", "description": "d", "customer": {"email": "a@b.co"}, "statusCategory": "new", "statusId": uuid}),
            ),
            400,
            "VALIDATION_INVALID_BODY",
            Some("statusCategory"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets"),
            Some(
                json!({"subject": "s", "description": "d", "customer": {"email": "a@b.co"}, "teamId": uuid}),
            ),
            422,
            "TICKET_TEAM_NOT_FOUND",
            None,
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets"),
            Some(
                json!({"subject": "s", "description": "d", "customer": {"email": "a@b.co"}, "priority": "p1"}),
            ),
            400,
            "VALIDATION_INVALID_BODY",
            Some("priority"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets"),
            Some(
                json!({"subject": "s", "description": "d", "customer": {"email": "a@b.co"}, "assigneeId": uuid, "assigneeEmail": "x@y.co"}),
            ),
            400,
            "VALIDATION_INVALID_BODY",
            Some("assigneeEmail"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets"),
            Some(json!({"subject": "s", "bogus": 1})),
            400,
            "VALIDATION_INVALID_BODY",
            None,
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets"),
            Some(json!([1])),
            400,
            "VALIDATION_INVALID_BODY",
            None,
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets?limit=0"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("limit"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets?limit=101"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("limit"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets?status=open"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("status"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets?channel=fax"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("channel"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets?priority=p0"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("priority"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets?assigneeId=bob"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("assigneeId"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets?teamId=x"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("teamId"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets?createdAfter=yesterday"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("createdAfter"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets?sortBy=subject"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("sortBy"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets?order=up"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("order"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets?includeTotal=yes"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("includeTotal"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets?cursor=garbage!"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("cursor"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets/search"),
            Some(json!({"query": ""})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("query"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets/search"),
            Some(json!({"query": "x".repeat(513)})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("query"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets/search"),
            Some(json!({"query": "x", "limit": 51})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("limit"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets/search"),
            Some(json!({})),
            400,
            "VALIDATION_INVALID_BODY",
            None,
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets/0"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("ticketNumber"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets/2147483648"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("ticketNumber"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets/abc"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("ticketNumber"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets/99"),
            None,
            404,
            "TICKET_NOT_FOUND",
            None,
        ),
        (
            Method::GET,
            "AAAAAAAAAAAAAAAAAAAAA/helpdesk/tickets/1".into(),
            None,
            404,
            "AGENT_NOT_FOUND",
            None,
        ),
        (
            Method::PATCH,
            format!("{a}/helpdesk/tickets/99"),
            Some(json!({"priority": "low"})),
            404,
            "TICKET_NOT_FOUND",
            None,
        ),
        (
            Method::PATCH,
            format!("{a}/helpdesk/tickets/1"),
            Some(json!({"priority": "p1", "statusId": "no", "teamId": 5})),
            400,
            "VALIDATION_INVALID_BODY",
            None,
        ),
        (
            Method::PATCH,
            format!("{a}/helpdesk/tickets/1"),
            Some(json!({"priority": "p1", "statusId": "no"})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("statusId"),
        ),
        (
            Method::PATCH,
            format!("{a}/helpdesk/tickets/1"),
            Some(json!({"assigneeEmail": null})),
            400,
            "VALIDATION_INVALID_BODY",
            None,
        ),
        (
            Method::PATCH,
            format!("{a}/helpdesk/tickets/1"),
            Some(json!({"statusId": uuid})),
            422,
            "TICKET_INVALID_STATUS",
            None,
        ),
        (
            Method::PATCH,
            format!("{a}/helpdesk/tickets/1"),
            Some(json!({"teamId": uuid})),
            422,
            "TICKET_TEAM_NOT_FOUND",
            None,
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets/1/messages?types=reply,chat"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("types"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets/1/messages?order=sideways"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("order"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets/1/messages?cursor=x"),
            None,
            400,
            "VALIDATION_INVALID_BODY",
            Some("cursor"),
        ),
        (
            Method::GET,
            format!("{a}/helpdesk/tickets/99/messages"),
            None,
            404,
            "TICKET_NOT_FOUND",
            None,
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets/1/messages"),
            Some(json!({"type": "note", "content": "x", "authorEmail": "a@b.co"})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("type"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets/1/messages"),
            Some(json!({"type": "reply", "content": "  ", "authorEmail": "a@b.co"})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("content"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets/1/messages"),
            Some(json!({"type": "reply", "content": "x"})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("authorId"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets/1/messages"),
            Some(
                json!({"type": "reply", "content": "x", "authorId": uuid, "authorEmail": "a@b.co"}),
            ),
            400,
            "VALIDATION_INVALID_BODY",
            Some("authorEmail"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets/1/messages"),
            Some(json!({"type": "reply", "content": "x", "authorId": "bob"})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("authorId"),
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets/1/messages"),
            Some(json!({"type": "reply", "content": "<b></b>", "authorEmail": "a@b.co"})),
            422,
            "MESSAGE_CONTENT_NOT_RENDERABLE",
            None,
        ),
        (
            Method::POST,
            format!("{a}/helpdesk/tickets/99/messages"),
            Some(json!({"type": "reply", "content": "x", "authorEmail": "a@b.co"})),
            404,
            "TICKET_NOT_FOUND",
            None,
        ),
        (
            Method::POST,
            format!("{a}/conversations/00000000-0000-4000-8000-000000000000/take-over"),
            None,
            404,
            "RESOURCE_NOT_FOUND",
            None,
        ),
        (
            Method::POST,
            format!("{a}/conversations/00000000-0000-4000-8000-000000000000/hand-back"),
            None,
            404,
            "RESOURCE_NOT_FOUND",
            None,
        ),
    ];
    for (method, path, body, status, code, field) in rows {
        let (s, b) = call(&t, method.clone(), &path, body.clone()).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path} {body:?}: {b}"
        );
        assert!(b["error"]["message"].is_string(), "{b}");
        if let Some(f) = field {
            assert!(b["error"]["details"][f].is_string(), "{method} {path}: {b}");
        }
    }
    // The creates above that failed left nothing behind.
    let (_, list) = call(
        &t,
        Method::GET,
        &format!("{a}/helpdesk/tickets?includeTotal=true"),
        None,
    )
    .await;
    assert_eq!(list["pagination"]["total"], 1);
    // A conversation that is not taken over takes no reply (409) and cannot be
    // handed back.
    let r = t.say(&agent, None, "hello").await;
    let conversation = r.data.metadata.conversation_id.clone();
    let (s, b) = call(
        &t,
        Method::POST,
        &format!("{a}/conversations/{conversation}/hand-back"),
        None,
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("CONVERSATION_NOT_TAKEN_OVER"))
    );
}

/// A public scripted agent (the widget serves public agents only).
async fn public_agent(t: &TestApp) -> String {
    let agent = t.scripted_agent().await;
    let (s, b) = call(
        t,
        Method::PUT,
        &agent,
        Some(json!({"visibility": "public"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    agent
}

/// A widget turn: its conversation id and the answer's text.
async fn widget_say(
    t: &TestApp,
    agent: &str,
    conversation: Option<&str>,
    text: &str,
) -> (String, String) {
    let mut body = json!({"message": text, "visitorId": VISITOR});
    if let Some(c) = conversation {
        body["conversationId"] = json!(c);
    }
    let r = reqwest::Client::new()
        .post(t.url(&format!("/widget/v1/agents/{agent}/chat")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let f = frames(&r.text().await.unwrap());
    let text: String = f
        .iter()
        .filter(|c| c["type"] == "text-delta")
        .map(|c| c["delta"].as_str().unwrap())
        .collect();
    let id = f.last().unwrap()["messageMetadata"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, text)
}

async fn live(t: &TestApp, agent: &str, conversation: &str, after: i64, wait: u64) -> Value {
    let r = reqwest::Client::new()
        .get(t.url(&format!(
            "/widget/v1/agents/{agent}/live?visitorId={VISITOR}&conversationId={conversation}&after={after}&wait={wait}"
        )))
        .send()
        .await
        .unwrap();
    let (s, _, b) = outcome(r).await;
    assert_eq!(s, 200, "{b}");
    b["data"].clone()
}

#[tokio::test]
async fn a_visitor_asks_for_a_person_the_ai_falls_silent_and_the_reply_arrives_live() {
    visitor_handoff_flow(None).await;
}

#[tokio::test]
async fn the_handoff_flow_runs_on_postgres() {
    let Some(url) = crate::sources::fresh_postgres().await else {
        return;
    };
    visitor_handoff_flow(Some(&url)).await;
}

async fn visitor_handoff_flow(database_url: Option<&str>) {
    let t = spawn_full(
        |s| {
            loopback_allowed(s);
            s.rate_limit.requests = 1_000_000;
        },
        &agentbase_service::models::Providers::new(),
        None,
        database_url,
    )
    .await;
    let agent = public_agent(&t).await;
    member(&t, "dana@example.com", "Dana").await;
    let (port, got) = receiver(|_| 200).await;
    create_hook(
        &t,
        &agent,
        &format!("http://127.0.0.1:{port}/hook"),
        &[
            "conversation.taken_over",
            "ticket.created",
            "ticket.updated",
        ],
    )
    .await;
    let (conversation, answer) = widget_say(&t, &agent, None, "hello").await;
    assert_eq!(answer, "Echo: hello");

    // The visitor presses "talk to a person": a ticket, the conversation taken over.
    let r = reqwest::Client::new()
        .post(t.url(&format!("/widget/v1/agents/{agent}/handoff")))
        .json(&json!({"visitorId": VISITOR, "conversationId": conversation}))
        .send()
        .await
        .unwrap();
    let (s, _, b) = outcome(r).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["status"], "taken_over");
    let number = b["data"]["ticketNumber"].as_i64().unwrap();
    // Another visitor cannot hand this conversation over.
    let r = reqwest::Client::new()
        .post(t.url(&format!("/widget/v1/agents/{agent}/handoff")))
        .json(&json!({"visitorId": "v_someone_else_1", "conversationId": conversation}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (_, ticket) = call(
        &t,
        Method::GET,
        &format!("{agent}/helpdesk/tickets/{number}"),
        None,
    )
    .await;
    assert_ticket(&ticket, false);
    assert_eq!(ticket["conversationId"], conversation.as_str());
    assert_eq!(ticket["channel"], "iframe");
    assert_eq!(ticket["metadata"]["requestedBy"], "visitor");
    let (_, c) = call(
        &t,
        Method::GET,
        &format!("{agent}/conversations/{conversation}"),
        None,
    )
    .await;
    assert_eq!(c["data"]["status"], "taken_over");
    assert_eq!(c["data"]["answeredBy"], "human");

    // The AI stays silent: the message is stored and joins the ticket's thread.
    let (again, silent) =
        widget_say(&t, &agent, Some(&conversation), "I need a human please").await;
    assert_eq!(again, conversation);
    assert_eq!(silent, "", "no AI answer while taken over");
    let (_, thread) = call(
        &t,
        Method::GET,
        &format!("{agent}/helpdesk/tickets/{number}/messages"),
        None,
    )
    .await;
    let texts: Vec<&str> = thread["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["contentText"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["hello", "I need a human please"]);
    // The API's JSON chat answers with an empty assistant message (spec-valid).
    let (s, j) = call(
        &t,
        Method::POST,
        &format!("{agent}/chat"),
        Some(json!({"message": "still there?", "conversationId": conversation, "stream": false})),
    )
    .await;
    assert_eq!(s, 200, "{j}");
    assert_eq!(j["data"]["parts"], json!([]));
    assert_eq!(j["data"]["metadata"]["usage"]["credits"], 0.0);

    // A widget subscriber waits; the operator replies; the reply arrives live.
    let head = live(&t, &agent, &conversation, 0, 0).await;
    assert_eq!(head["status"], "taken_over");
    let seen = head["messages"].as_array().unwrap().last().unwrap()["seq"]
        .as_i64()
        .unwrap();
    let subscriber = {
        let url = t.url(&format!(
            "/widget/v1/agents/{agent}/live?visitorId={VISITOR}&conversationId={conversation}&after={seen}&wait=10"
        ));
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            (body, started.elapsed())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (s, reply) = call(
        &t,
        Method::POST,
        &format!("{agent}/helpdesk/tickets/{number}/messages"),
        Some(
            json!({"type": "reply", "content": "Hi, I am Dana. How can I help?",
                    "authorEmail": "dana@example.com"}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{reply}");
    let (body, took) = subscriber.await.unwrap();
    assert!(
        took < std::time::Duration::from_secs(8),
        "answered on arrival: {took:?}"
    );
    let pushed = &body["data"]["messages"];
    assert_eq!(pushed.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(pushed[0]["text"], "Hi, I am Dana. How can I help?");
    assert_eq!(pushed[0]["role"], "assistant");
    assert_eq!(pushed[0]["answeredBy"]["type"], "human");
    assert_eq!(pushed[0]["answeredBy"]["email"], "dana@example.com");

    // The API's messages show who answered each.
    let (_, msgs) = call(
        &t,
        Method::GET,
        &format!("{agent}/conversations/{conversation}/messages"),
        None,
    )
    .await;
    let by: Vec<(String, Value)> = msgs["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .map(|m| {
            (
                m["parts"][0]["text"].as_str().unwrap_or("").to_owned(),
                m["metadata"]["answeredBy"]["type"].clone(),
            )
        })
        .collect();
    assert_eq!(
        by,
        [
            ("Echo: hello".to_owned(), json!("ai")),
            ("Hi, I am Dana. How can I help?".to_owned(), json!("human"))
        ]
    );

    // Handing back resumes the AI; a reply through the ticket is then refused.
    let (s, b) = call(
        &t,
        Method::POST,
        &format!("{agent}/conversations/{conversation}/hand-back"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["status"], "ongoing");
    let (_, answer) = widget_say(&t, &agent, Some(&conversation), "thanks").await;
    assert_eq!(answer, "Echo: thanks");
    let (s, b) = call(
        &t,
        Method::POST,
        &format!("{agent}/helpdesk/tickets/{number}/messages"),
        Some(json!({"type": "reply", "content": "late", "authorEmail": "dana@example.com"})),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("CONVERSATION_NOT_TAKEN_OVER"))
    );

    // An operator takes it over again through the API: the same open ticket.
    let (s, b) = call(
        &t,
        Method::POST,
        &format!("{agent}/conversations/{conversation}/take-over"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["status"], "taken_over");
    assert_eq!(b["data"]["ticket"]["ticketNumber"], number);
    assert_ticket(&b["data"]["ticket"], false);

    // The webhooks heard each step (through the outbox).
    wait_for("the handoff events", || {
        let all = got.lock().unwrap();
        let types: Vec<String> = all
            .iter()
            .map(|r| r.json()["eventType"].as_str().unwrap().to_owned())
            .collect();
        types
            .iter()
            .filter(|t| *t == "conversation.taken_over")
            .count()
            == 2
            && types.contains(&"ticket.created".to_owned())
            && types.contains(&"ticket.updated".to_owned())
    })
    .await;
    let all = got.lock().unwrap();
    let taken = all
        .iter()
        .map(|r| r.json())
        .find(|b| b["eventType"] == "conversation.taken_over")
        .unwrap();
    assert_eq!(taken["chatbotId"], agent.as_str());
    assert_eq!(taken["payload"]["conversationId"], conversation.as_str());
    assert_eq!(taken["payload"]["ticketNumber"], number);
    assert_eq!(taken["payload"]["requestedBy"], "visitor");
}

#[tokio::test]
async fn the_operator_takes_over_replies_live_and_hands_back_from_the_dashboard() {
    let t = spawn_with(|s| s.rate_limit.requests = 1_000_000).await;
    let agent = public_agent(&t).await;
    let (conversation, _) = widget_say(&t, &agent, None, "hello").await;
    let op = crate::dashboard::sign_in(&t).await;
    let page = format!(
        "/dashboard/w/{}/agents/{agent}/conversations/{conversation}",
        t.workspace_id
    );
    let (status, html) = op.get(&page).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-testid=\"handoff-take-over\""), "{html}");

    let html = op.post_and_follow(&format!("{page}/take-over"), &[]).await;
    assert!(html.contains("Taken over as ticket #1"), "{html}");
    assert!(html.contains("data-testid=\"handoff-reply\""));
    // The tickets page lists it, and its filters narrow the list.
    let tickets = format!("/dashboard/w/{}/agents/{agent}/tickets", t.workspace_id);
    let (status, html) = op.get(&tickets).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("#1") && html.contains(&conversation),
        "{html}"
    );
    let (_, html) = op.get(&format!("{tickets}?status=closed")).await;
    assert!(html.contains("No tickets match."), "{html}");
    let (_, html) = op
        .get(&format!("{tickets}?status=new&team=none&assignee=none"))
        .await;
    assert!(html.contains("ticket-number"), "{html}");
    // An assignee by email is matched among the rows: nobody has this one.
    let (_, html) = op
        .get(&format!("{tickets}?assignee=Nobody@Example.com"))
        .await;
    assert!(html.contains("No tickets match."), "{html}");

    // The visitor writes: the AI is silent, the operator's live feed has it.
    let (_, silent) = widget_say(&t, &agent, Some(&conversation), "are you a person?").await;
    assert_eq!(silent, "");
    let r = op
        .request(Method::GET, &format!("{page}/live.json?after=2&wait=0"))
        .send()
        .await
        .unwrap();
    let feed: Value = r.json().await.unwrap();
    assert_eq!(feed["status"], "taken_over");
    assert_eq!(feed["messages"][0]["text"], "are you a person?");
    assert_eq!(feed["messages"][0]["role"], "user");

    // A widget subscriber is waiting when the operator replies from the page.
    let seen = feed["messages"][0]["seq"].as_i64().unwrap();
    let url = t.url(&format!(
        "/widget/v1/agents/{agent}/live?visitorId={VISITOR}&conversationId={conversation}&after={seen}&wait=10"
    ));
    let subscriber = tokio::spawn(async move {
        reqwest::get(url)
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let html = op
        .post_and_follow(&format!("{page}/reply"), &[("text", "Yes, I am Sam.")])
        .await;
    assert!(html.contains("Reply sent."), "{html}");
    let pushed = subscriber.await.unwrap();
    assert_eq!(pushed["data"]["messages"][0]["text"], "Yes, I am Sam.");
    assert_eq!(pushed["data"]["messages"][0]["answeredBy"]["type"], "human");

    // Handing back: the AI answers the next message.
    let html = op.post_and_follow(&format!("{page}/hand-back"), &[]).await;
    assert!(html.contains("Handed back"), "{html}");
    assert!(html.contains("data-testid=\"handoff-take-over\""));
    let (_, answer) = widget_say(&t, &agent, Some(&conversation), "bye").await;
    assert_eq!(answer, "Echo: bye");
    // A reply to a conversation that is not taken over is refused with a notice.
    let r = op.post(&format!("{page}/reply"), &[("text", "late")]).await;
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.contains("error="), "{to}");
}

/// The model hands a conversation to a person through the built-in
/// `escalate_to_human` action: the server resolves the call itself (the client
/// never sees a tool call), the answer tells the visitor, the conversation becomes
/// a ticket requested by the model with its reason, and the AI falls silent. An
/// agent without the action gets the same call as an ordinary client action.
#[tokio::test]
async fn the_model_escalates_through_the_built_in_action() {
    let t = spawn().await;
    let agent = public_agent(&t).await;
    let escalate = json!({"actions": [{
        "name": "escalate_to_human",
        "description": "Hand the conversation to a person when the user asks for one",
        "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}}
    }]});
    let (s, b) = call(&t, Method::PUT, &format!("{agent}/actions"), Some(escalate)).await;
    assert_eq!(s, 200, "{b}");
    let script = r#"[[tool:escalate_to_human {"reason": "a refund over the limit"}]]"#;

    // Streamed (the widget): text only, no tool events, finish "stop".
    let (conversation, text) = widget_say(&t, &agent, None, script).await;
    assert_eq!(
        text,
        agentbase_service::helpdesk::ESCALATION_NOTICE,
        "the visitor is told"
    );
    let (_, c) = call(
        &t,
        Method::GET,
        &format!("{agent}/conversations/{conversation}"),
        None,
    )
    .await;
    assert_eq!(c["data"]["status"], "taken_over", "{c}");
    let messages = c["data"]["messages"].as_array().unwrap();
    let answer = messages.last().unwrap();
    assert_eq!(
        answer["parts"],
        json!([{"type": "text", "text": agentbase_service::helpdesk::ESCALATION_NOTICE}]),
        "no tool call is stored for the built-in action: {answer}"
    );
    let (_, tickets) = call(&t, Method::GET, &format!("{agent}/helpdesk/tickets"), None).await;
    let ticket = tickets["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["conversationId"] == conversation.as_str())
        .unwrap_or_else(|| panic!("a ticket for the conversation: {tickets}"))
        .clone();
    let (_, ticket) = call(
        &t,
        Method::GET,
        &format!("{agent}/helpdesk/tickets/{}", ticket["ticketNumber"]),
        None,
    )
    .await;
    assert_ticket(&ticket, false);
    assert_eq!(ticket["metadata"]["requestedBy"], "model");
    assert_eq!(ticket["metadata"]["reason"], "a refund over the limit");
    // The AI is silent now.
    let (_, silent) = widget_say(&t, &agent, Some(&conversation), "hello?").await;
    assert_eq!(silent, "");

    // The JSON API: the same, finish reason "stop", nothing for the client to run.
    let (s, j) = call(
        &t,
        Method::POST,
        &format!("{agent}/chat"),
        Some(json!({"message": format!("I am angry {script}"), "stream": false})),
    )
    .await;
    assert_eq!(s, 200, "{j}");
    assert_eq!(j["data"]["metadata"]["finishReason"], "stop", "{j}");
    let parts = j["data"]["parts"].as_array().unwrap();
    assert!(
        parts.iter().all(|p| p["type"] == "text"),
        "no tool call reaches the client: {j}"
    );
    let api_conversation = j["data"]["metadata"]["conversationId"].as_str().unwrap();
    let (_, c) = call(
        &t,
        Method::GET,
        &format!("{agent}/conversations/{api_conversation}"),
        None,
    )
    .await;
    assert_eq!(c["data"]["status"], "taken_over");

    // Without the action on the agent, the call goes to the client as before.
    let other = t.scripted_agent().await;
    let (s, j) = call(
        &t,
        Method::POST,
        &format!("{other}/chat"),
        Some(json!({"message": script, "stream": false})),
    )
    .await;
    assert_eq!(s, 200, "{j}");
    assert_eq!(j["data"]["metadata"]["finishReason"], "tool-calls", "{j}");
    let other_conversation = j["data"]["metadata"]["conversationId"].as_str().unwrap();
    let (_, c) = call(
        &t,
        Method::GET,
        &format!("{other}/conversations/{other_conversation}"),
        None,
    )
    .await;
    assert_eq!(c["data"]["status"], "ongoing");
}
