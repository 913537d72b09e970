//! Tenant isolation: a key reaches its own workspace only, and a dashboard page of one
//! workspace reaches only that workspace's resources. Every route that names a
//! resource, called with another workspace's key (or under another workspace's
//! dashboard path) on this workspace's resources, answers exactly as it does for
//! resources that do not exist, and changes nothing. A route added to the router but
//! not to this matrix fails `every_route_is_in_the_isolation_matrix`.

use std::collections::BTreeSet;

use agentbase_core::Plan;
use reqwest::Method;
use serde_json::{Value, json};

use crate::dashboard::sign_in;
use crate::{TestApp, outcome, spawn_with};

type Endpoint = (Method, &'static str, Option<&'static str>);

/// Every API route that names a resource. Placeholders: `{a}` agent, `{c}`
/// conversation, `{m}` message, `{s}` source, `{r}` crawl run, `{d}` dataset, `{v}`
/// key-value store, `{key}` a record key that exists (`INPUT`), `{u}` user id, `{h}`
/// webhook. Destructive calls come last, so a leak shows in the calls before them.
const API: &[Endpoint] = &[
    (Method::GET, "/api/v2/agents/{a}", None),
    (
        Method::PUT,
        "/api/v2/agents/{a}",
        Some(r#"{"name":"pwned"}"#),
    ),
    (Method::PUT, "/api/v2/agents/{a}", Some(r#"{"temp":9}"#)),
    (Method::PUT, "/api/v2/agents/{a}", Some("{bad json")),
    (
        Method::PUT,
        "/api/v2/agents/{a}/styles",
        Some(r##"{"styles":{"chat":{"accentColor":"#ff0000"}}}"##),
    ),
    (Method::POST, "/api/v2/agents/{a}/clone", None),
    (Method::GET, "/api/v2/agents/{a}/webhooks", None),
    (
        Method::POST,
        "/api/v2/agents/{a}/webhooks",
        Some(r#"{"url":"https://evil.example/in","events":["leads.submit"]}"#),
    ),
    (
        Method::POST,
        "/api/v2/agents/{a}/webhooks",
        Some("{bad json"),
    ),
    (Method::GET, "/api/v2/agents/{a}/webhooks/{h}", None),
    (
        Method::PATCH,
        "/api/v2/agents/{a}/webhooks/{h}",
        Some(r#"{"url":"https://evil.example/in","rotateSecret":true}"#),
    ),
    (
        Method::PATCH,
        "/api/v2/agents/{a}/webhooks/{h}",
        Some(r#"{"events":["nope"]}"#),
    ),
    (
        Method::GET,
        "/api/v2/agents/{a}/webhooks/{h}/deliveries",
        None,
    ),
    (Method::GET, "/api/v2/agents/{a}/actions", None),
    (
        Method::PUT,
        "/api/v2/agents/{a}/actions",
        Some(r#"{"actions":[]}"#),
    ),
    (Method::GET, "/api/v2/agents/{a}/sources", None),
    (
        Method::POST,
        "/api/v2/agents/{a}/sources",
        Some(r#"{"type":"text","name":"pwned","content":"planted by another workspace"}"#),
    ),
    (Method::GET, "/api/v2/agents/{a}/sources/summary", None),
    (Method::GET, "/api/v2/agents/{a}/sources/{s}", None),
    (
        Method::PUT,
        "/api/v2/agents/{a}/sources/{s}",
        Some(r#"{"name":"pwned"}"#),
    ),
    (Method::POST, "/api/v2/agents/{a}/sources/{s}/restore", None),
    (Method::POST, "/api/v2/agents/{a}/train", None),
    (
        Method::PUT,
        "/api/v2/agents/{a}/auto-retrain",
        Some(r#"{"enabled":true}"#),
    ),
    (Method::GET, "/api/v2/agents/{a}/training-jobs", None),
    (
        Method::POST,
        "/api/v2/agents/{a}/search",
        Some(r#"{"query":"secret"}"#),
    ),
    (
        Method::POST,
        "/api/v2/agents/{a}/chat",
        Some(r#"{"message":"hi","stream":false}"#),
    ),
    (
        Method::POST,
        "/api/v2/agents/{a}/chat",
        Some(r#"{"message":"hi","conversationId":"{c}","stream":false}"#),
    ),
    (
        Method::POST,
        "/api/v2/agents/{a}/conversations/{c}/retry",
        Some(r#"{"messageId":"{m}","stream":false}"#),
    ),
    (Method::GET, "/api/v2/agents/{a}/conversations", None),
    (Method::GET, "/api/v2/agents/{a}/conversations/export", None),
    (
        Method::GET,
        "/api/v2/agents/{a}/conversations/search?query=secret",
        None,
    ),
    (Method::GET, "/api/v2/agents/{a}/conversations/{c}", None),
    (
        Method::PATCH,
        "/api/v2/agents/{a}/conversations/{c}",
        Some(r#"{"paused":true}"#),
    ),
    (
        Method::GET,
        "/api/v2/agents/{a}/conversations/{c}/messages",
        None,
    ),
    (
        Method::POST,
        "/api/v2/agents/{a}/conversations/{c}/tool-result",
        Some(r#"{"toolCallId":"x","output":1}"#),
    ),
    (
        Method::PATCH,
        "/api/v2/agents/{a}/conversations/{c}/messages/{m}/feedback",
        Some(r#"{"feedback":"negative"}"#),
    ),
    (
        Method::GET,
        "/api/v2/agents/{a}/users/{u}/conversations",
        None,
    ),
    (
        Method::POST,
        "/api/v1/chat",
        Some(
            r#"{"chatbotId":"{a}","conversationId":"{c}","messages":[{"role":"user","content":"x"}]}"#,
        ),
    ),
    (Method::GET, "/api/v1/get-conversations?chatbotId={a}", None),
    (Method::GET, "/api/v1/get-leads?chatbotId={a}", None),
    (
        Method::GET,
        "/api/v1/get-leads?chatbotId={a}&startDate=2020-01-01&page=1&size=5",
        None,
    ),
    (Method::GET, "/api/v2/agents/{a}/leads/export", None),
    (Method::GET, "/api/v1/chatbots/{a}/contacts", None),
    (
        Method::GET,
        "/api/v1/chatbots/{a}/contacts?page=1&per_page=10",
        None,
    ),
    (
        Method::POST,
        "/api/v1/chatbots/{a}/contacts",
        Some(r#"{"users":[{"external_id":"planted","name":"pwned"}]}"#),
    ),
    (Method::GET, "/api/v1/chatbots/{a}/contacts/{ct}", None),
    (
        Method::PATCH,
        "/api/v1/chatbots/{a}/contacts/{ct}",
        Some(r#"{"data":{"name":"pwned"}}"#),
    ),
    (Method::GET, "/api/v1/chatbots/{a}/custom-attributes", None),
    (
        Method::POST,
        "/api/v1/chatbots/{a}/custom-attributes",
        Some(r#"{"name":"planted","type":"text"}"#),
    ),
    (
        Method::PUT,
        "/api/v1/chatbots/{a}/custom-attributes/{n}",
        Some(r#"{"archived":true}"#),
    ),
    (
        Method::GET,
        "/api/v2/agents/{a}/identity-verification",
        None,
    ),
    (
        Method::POST,
        "/api/v2/agents/{a}/identity-verification",
        None,
    ),
    (
        Method::POST,
        "/api/v1/update-chatbot-settings",
        Some(r#"{"chatbotId":"{a}","name":"pwned"}"#),
    ),
    (
        Method::POST,
        "/api/v1/update-chatbot-settings",
        Some(r#"{"chatbotId":"{a}","collectCustomerInformation":{"email":{"active":true}}}"#),
    ),
    (
        Method::POST,
        "/api/v1/update-chatbot-data",
        Some(r#"{"chatbotId":"{a}","chatbotName":"pwned","sourceText":"planted"}"#),
    ),
    (Method::GET, "/v2/actor-runs/{r}", None),
    (Method::GET, "/v2/actor-runs/{r}?waitForFinish=1", None),
    (Method::GET, "/v2/actor-runs/{r}/dataset", None),
    (Method::GET, "/v2/actor-runs/{r}/dataset/items", None),
    (
        Method::GET,
        "/v2/actor-runs/{r}/dataset/items?format=csv",
        None,
    ),
    (Method::GET, "/v2/datasets/{d}", None),
    (Method::GET, "/v2/datasets/{d}/items", None),
    (
        Method::GET,
        "/v2/datasets/{d}/items?format=jsonl&clean=true",
        None,
    ),
    (Method::GET, "/v2/actor-runs/{r}/log", None),
    (Method::GET, "/v2/logs/{r}", None),
    (Method::GET, "/v2/logs/{r}?stream=1", None),
    (Method::GET, "/v2/actor-runs/{r}/key-value-store", None),
    (
        Method::GET,
        "/v2/actor-runs/{r}/key-value-store/records/{key}",
        None,
    ),
    (Method::GET, "/v2/key-value-stores/{v}", None),
    (Method::GET, "/v2/key-value-stores/{v}/keys", None),
    (Method::GET, "/v2/key-value-stores/{v}/records/{key}", None),
    (
        Method::PUT,
        "/v2/key-value-stores/{v}/records/{key}",
        Some(r#"{"planted":"by another workspace"}"#),
    ),
    (
        Method::DELETE,
        "/v2/key-value-stores/{v}/records/{key}",
        None,
    ),
    (Method::GET, "/v2/actor-runs/{r}/key-value-store/keys", None),
    (Method::GET, "/v2/acts/{act}/runs/{r}", None),
    (Method::GET, "/v2/acts/{act}/runs/{r}?waitForFinish=1", None),
    (Method::GET, "/v2/acts/{act}/runs/{r}/dataset", None),
    (Method::GET, "/v2/acts/{act}/runs/{r}/dataset/items", None),
    (Method::GET, "/v2/acts/{act}/runs/{r}/log", None),
    (Method::GET, "/v2/acts/{act}/runs/{r}/key-value-store", None),
    (
        Method::GET,
        "/v2/acts/{act}/runs/{r}/key-value-store/keys",
        None,
    ),
    (
        Method::GET,
        "/v2/acts/{act}/runs/{r}/key-value-store/records/{key}",
        None,
    ),
    (Method::GET, "/v2/actors/{act}/runs/{r}", None),
    (
        Method::GET,
        "/v2/actors/{act}/runs/{r}?waitForFinish=1",
        None,
    ),
    (Method::GET, "/v2/actors/{act}/runs/{r}/dataset", None),
    (Method::GET, "/v2/actors/{act}/runs/{r}/dataset/items", None),
    (Method::GET, "/v2/actors/{act}/runs/{r}/log", None),
    (
        Method::GET,
        "/v2/actors/{act}/runs/{r}/key-value-store",
        None,
    ),
    (
        Method::GET,
        "/v2/actors/{act}/runs/{r}/key-value-store/keys",
        None,
    ),
    (
        Method::GET,
        "/v2/actors/{act}/runs/{r}/key-value-store/records/{key}",
        None,
    ),
    (Method::POST, "/v2/acts/{act}/runs/{r}/abort", None),
    (Method::POST, "/v2/actors/{act}/runs/{r}/abort", None),
    (Method::POST, "/v2/actor-runs/{r}/abort", None),
    (Method::DELETE, "/v2/acts/{act}/runs/{r}", None),
    (Method::DELETE, "/v2/actors/{act}/runs/{r}", None),
    (Method::DELETE, "/v2/actor-runs/{r}", None),
    (Method::DELETE, "/v2/datasets/{d}", None),
    (Method::GET, "/v2/webhooks/{aw}", None),
    (
        Method::PUT,
        "/v2/webhooks/{aw}",
        Some(r#"{"requestUrl":"https://intruder.example/"}"#),
    ),
    (Method::DELETE, "/v2/webhooks/{aw}", None),
    (Method::POST, "/v2/webhooks/{aw}/test", None),
    (Method::GET, "/v2/webhooks/{aw}/dispatches", None),
    (Method::GET, "/v2/webhook-dispatches/{dp}", None),
    (
        Method::POST,
        "/v2/webhooks",
        Some(
            r#"{"eventTypes":["ACTOR.RUN.SUCCEEDED"],"condition":{"actorRunId":"{r}"},"requestUrl":"https://intruder.example/"}"#,
        ),
    ),
    (Method::DELETE, "/v2/key-value-stores/{v}", None),
    (Method::DELETE, "/v2/actor-runs/{r}/dataset", None),
    (Method::DELETE, "/v2/actor-runs/{r}/key-value-store", None),
    (Method::DELETE, "/v2/acts/{act}/runs/{r}/dataset", None),
    (
        Method::DELETE,
        "/v2/acts/{act}/runs/{r}/key-value-store",
        None,
    ),
    (Method::DELETE, "/v2/actors/{act}/runs/{r}/dataset", None),
    (
        Method::DELETE,
        "/v2/actors/{act}/runs/{r}/key-value-store",
        None,
    ),
    // The helpdesk (`{t}` a ticket number) and the handoff.
    (
        Method::GET,
        "/api/v2/agents/{a}/helpdesk/ticket-statuses",
        None,
    ),
    (Method::GET, "/api/v2/agents/{a}/helpdesk/teams", None),
    (Method::GET, "/api/v2/agents/{a}/helpdesk/tickets", None),
    (
        Method::POST,
        "/api/v2/agents/{a}/helpdesk/tickets",
        Some(r#"{"subject":"pwned","description":"x","customer":{"email":"e@evil.example"}}"#),
    ),
    (
        Method::POST,
        "/api/v2/agents/{a}/helpdesk/tickets/search",
        Some(r#"{"query":"secret"}"#),
    ),
    (Method::GET, "/api/v2/agents/{a}/helpdesk/tickets/{t}", None),
    (
        Method::PATCH,
        "/api/v2/agents/{a}/helpdesk/tickets/{t}",
        Some(r#"{"priority":"urgent"}"#),
    ),
    (
        Method::GET,
        "/api/v2/agents/{a}/helpdesk/tickets/{t}/messages",
        None,
    ),
    (
        Method::POST,
        "/api/v2/agents/{a}/helpdesk/tickets/{t}/messages",
        Some(r#"{"type":"reply","content":"pwned","authorEmail":"e@evil.example"}"#),
    ),
    (
        Method::POST,
        "/api/v2/agents/{a}/conversations/{c}/take-over",
        None,
    ),
    (
        Method::POST,
        "/api/v2/agents/{a}/conversations/{c}/hand-back",
        None,
    ),
    (Method::DELETE, "/api/v2/agents/{a}/webhooks/{h}", None),
    (Method::DELETE, "/api/v1/chatbots/{a}/contacts/{ct}", None),
    (Method::DELETE, "/api/v2/agents/{a}/sources/{s}", None),
    (Method::DELETE, "/api/v1/delete-chatbot?chatbotId={a}", None),
    (Method::DELETE, "/api/v2/agents/{a}", None),
];

/// Dashboard routes that name a resource inside the workspace of the path. `{w}` is
/// the intruder's workspace (the page the operator is on); `{k}` a key id. Forms
/// carry the session's CSRF token; `playground/chat` posts JSON.
const DASHBOARD: &[Endpoint] = &[
    (Method::GET, "/dashboard/w/{w}/agents/{a}", None),
    (Method::GET, "/dashboard/w/{w}/agents/{a}/playground", None),
    (
        Method::GET,
        "/dashboard/w/{w}/agents/{a}/conversations",
        None,
    ),
    (
        Method::GET,
        "/dashboard/w/{w}/agents/{a}/conversations/{c}",
        None,
    ),
    (Method::GET, "/dashboard/w/{w}/agents/{a}/sources", None),
    (
        Method::GET,
        "/dashboard/w/{w}/agents/{a}/training.json",
        None,
    ),
    (Method::GET, "/dashboard/w/{w}/agents/{a}/tickets", None),
    (Method::GET, "/dashboard/w/{w}/agents/{a}/leads", None),
    (Method::GET, "/dashboard/w/{w}/agents/{a}/leads.csv", None),
    (
        Method::GET,
        "/dashboard/w/{w}/agents/{a}/conversations/{c}/live.json?wait=0",
        None,
    ),
    (
        Method::POST,
        "/dashboard/w/{w}/agents/{a}/conversations/{c}/reply",
        Some("text=pwned"),
    ),
    (
        Method::POST,
        "/dashboard/w/{w}/agents/{a}/conversations/{c}/take-over",
        Some(""),
    ),
    (
        Method::POST,
        "/dashboard/w/{w}/agents/{a}/conversations/{c}/hand-back",
        Some(""),
    ),
    (
        Method::POST,
        "/dashboard/w/{w}/agents/{a}/playground/chat",
        Some(r#"{"message":"hi","conversationId":"{c}"}"#),
    ),
    (
        Method::POST,
        "/dashboard/w/{w}/agents/{a}",
        Some("name=pwned&instructions=x&model=scripted&temp=0"),
    ),
    (
        Method::POST,
        "/dashboard/w/{w}/agents/{a}/sources",
        Some("multipart"),
    ),
    (
        Method::POST,
        "/dashboard/w/{w}/agents/{a}/retrain",
        Some(""),
    ),
    (
        Method::POST,
        "/dashboard/w/{w}/agents/{a}/auto-retrain",
        Some("enabled=on"),
    ),
    (
        Method::POST,
        "/dashboard/w/{w}/agents/{a}/lead-form",
        Some("email=1&title=x"),
    ),
    (Method::POST, "/dashboard/w/{w}/keys/{k}/revoke", Some("")),
    (
        Method::POST,
        "/dashboard/w/{w}/agents/{a}/sources/{s}/delete",
        Some(""),
    ),
    (Method::POST, "/dashboard/w/{w}/agents/{a}/delete", Some("")),
];

/// Routes that name no resource of a workspace, with the reason each needs no row in
/// the matrix. Listing and creating routes are checked below for what they show.
const UNSCOPED: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/api/v2/agents",
        "lists the caller's agents: checked by `lists_show_only_the_callers_own`",
    ),
    (
        "POST",
        "/api/v2/agents",
        "creates in the caller's workspace; names nothing",
    ),
    (
        "GET",
        "/api/v1/get-chatbots",
        "lists the caller's agents: checked by `lists_show_only_the_callers_own`",
    ),
    (
        "POST",
        "/api/v1/create-chatbot",
        "creates in the caller's workspace; names nothing",
    ),
    (
        "POST",
        "/v2/acts/{actorId}/runs",
        "starts the caller's own run; the actor id names the crawler, not a resource",
    ),
    (
        "POST",
        "/v2/actors/{actorId}/runs",
        "starts the caller's own run; the actor id names the crawler, not a resource",
    ),
    (
        "POST",
        "/v2/acts/{actorId}/{name}/runs",
        "starts the caller's own run; `user/name` names the crawler, not a resource",
    ),
    (
        "POST",
        "/v2/actors/{actorId}/{name}/runs",
        "starts the caller's own run; `user/name` names the crawler, not a resource",
    ),
    (
        "GET",
        "/v2/acts/{actorId}",
        "the crawler as an actor, the same for every workspace",
    ),
    (
        "GET",
        "/v2/users/me",
        "the caller's own workspace as Apify's user: checked by `runs_are_listed_and_the_last_one_is_reachable_under_the_actor`",
    ),
    (
        "GET",
        "/v2/actor-runs",
        "lists the caller's own runs: checked by `runs_are_listed_and_the_last_one_is_reachable_under_the_actor`",
    ),
    (
        "GET",
        "/v2/webhooks",
        "lists the caller's own webhooks: checked by `lists_show_only_the_callers_own`",
    ),
    (
        "GET",
        "/v2/datasets",
        "lists the caller's own datasets: checked by `lists_show_only_the_callers_own`",
    ),
    (
        "GET",
        "/v2/key-value-stores",
        "lists the caller's own stores: checked by `lists_show_only_the_callers_own`",
    ),
    (
        "GET",
        "/v2/webhook-dispatches",
        "lists the caller's own dispatches: checked by `lists_show_only_the_callers_own`",
    ),
    (
        "GET",
        "/v2/acts/{actorId}/webhooks",
        "lists the caller's own webhooks: checked by `lists_show_only_the_callers_own`",
    ),
    (
        "GET",
        "/v2/actors/{actorId}/webhooks",
        "lists the caller's own webhooks: checked by `lists_show_only_the_callers_own`",
    ),
    (
        "GET",
        "/v2/acts/{actorId}/runs",
        "lists the caller's own runs: checked by `runs_are_listed_and_the_last_one_is_reachable_under_the_actor`",
    ),
    (
        "GET",
        "/v2/actors/{actorId}/runs",
        "lists the caller's own runs: checked by `runs_are_listed_and_the_last_one_is_reachable_under_the_actor`",
    ),
    (
        "GET",
        "/v2/acts/{actorId}/run-sync-get-dataset-items",
        "starts the caller's own run; the actor id names the crawler, not a resource",
    ),
    (
        "POST",
        "/v2/acts/{actorId}/run-sync-get-dataset-items",
        "starts the caller's own run; the actor id names the crawler, not a resource",
    ),
    (
        "GET",
        "/v2/acts/{actorId}/run-sync",
        "starts the caller's own run; the actor id names the crawler, not a resource",
    ),
    (
        "POST",
        "/v2/acts/{actorId}/run-sync",
        "starts the caller's own run; the actor id names the crawler, not a resource",
    ),
    (
        "GET",
        "/v2/actors/{actorId}/run-sync-get-dataset-items",
        "starts the caller's own run; the actor id names the crawler, not a resource",
    ),
    (
        "POST",
        "/v2/actors/{actorId}/run-sync-get-dataset-items",
        "starts the caller's own run; the actor id names the crawler, not a resource",
    ),
    (
        "GET",
        "/v2/actors/{actorId}/run-sync",
        "starts the caller's own run; the actor id names the crawler, not a resource",
    ),
    (
        "POST",
        "/v2/actors/{actorId}/run-sync",
        "starts the caller's own run; the actor id names the crawler, not a resource",
    ),
    (
        "GET",
        "/v2/actors/{actorId}",
        "the crawler as an actor, the same for every workspace",
    ),
    ("GET", "/api/v2/health", "public"),
    ("GET", "/api/v2/openapi.json", "public"),
    (
        "GET",
        "/metrics",
        "public (operator metrics, no tenant data)",
    ),
    ("GET", "/widget.js", "public script"),
    ("GET", "/embed.min.js", "public script"),
    (
        "GET",
        "/widget/v1/agents/{agentId}/config",
        "keyless: public agents only, by origin (widget tests)",
    ),
    (
        "OPTIONS",
        "/widget/v1/agents/{agentId}/config",
        "keyless CORS preflight",
    ),
    (
        "POST",
        "/widget/v1/agents/{agentId}/chat",
        "keyless: public agents only, by origin; a visitor continues only its own conversations (widget tests)",
    ),
    (
        "OPTIONS",
        "/widget/v1/agents/{agentId}/chat",
        "keyless CORS preflight",
    ),
    (
        "POST",
        "/widget/v1/agents/{agentId}/leads",
        "keyless: public agents only, by origin; a lead names only the visitor's own conversation (leads tests)",
    ),
    (
        "OPTIONS",
        "/widget/v1/agents/{agentId}/leads",
        "keyless CORS preflight",
    ),
    (
        "POST",
        "/widget/v1/agents/{agentId}/handoff",
        "keyless: public agents only, by origin; only the visitor's own conversation (helpdesk tests)",
    ),
    (
        "OPTIONS",
        "/widget/v1/agents/{agentId}/handoff",
        "keyless CORS preflight",
    ),
    (
        "GET",
        "/widget/v1/agents/{agentId}/live",
        "keyless: public agents only, by origin; only the visitor's own conversation (helpdesk tests)",
    ),
    ("GET", "/", "redirect"),
    ("GET", "/dashboard", "the operator's home"),
    ("GET", "/dashboard/", "the operator's home"),
    ("GET", "/dashboard/login", "sign-in"),
    ("POST", "/dashboard/login", "sign-in"),
    ("POST", "/dashboard/logout", "sign-out"),
    ("GET", "/dashboard/assets/{file}", "static files"),
    (
        "GET",
        "/dashboard/workspaces",
        "the operator manages every workspace",
    ),
    (
        "POST",
        "/dashboard/workspaces",
        "the operator manages every workspace",
    ),
    (
        "POST",
        "/dashboard/w/{ws}/plan",
        "the workspace itself, which the operator manages",
    ),
    (
        "GET",
        "/dashboard/w/{ws}/keys",
        "the workspace's own keys (revoking another's is in the matrix)",
    ),
    (
        "POST",
        "/dashboard/w/{ws}/keys",
        "creates a key in the workspace of the path",
    ),
    (
        "GET",
        "/dashboard/w/{ws}/usage",
        "the workspace's own usage",
    ),
    (
        "GET",
        "/dashboard/w/{ws}/agents",
        "lists the workspace's agents: checked by `lists_show_only_the_callers_own`",
    ),
    (
        "POST",
        "/dashboard/w/{ws}/agents",
        "creates in the workspace of the path",
    ),
    (
        "GET",
        "/dashboard/w/{ws}/members",
        "the workspace's own members (members tests)",
    ),
    (
        "POST",
        "/dashboard/w/{ws}/members",
        "invites into the workspace of the path",
    ),
    (
        "POST",
        "/dashboard/w/{ws}/members/{memberId}/reset",
        "finds the member within the workspace of the path: \
         `bad_member_input_gets_a_clear_error` posts another workspace's",
    ),
    (
        "POST",
        "/dashboard/w/{ws}/members/{memberId}/remove",
        "finds the member within the workspace of the path: \
         `bad_member_input_gets_a_clear_error` posts another workspace's",
    ),
    (
        "GET",
        "/dashboard/invite/{token}",
        "a one-time link: the token is the credential (members tests)",
    ),
    (
        "POST",
        "/dashboard/invite/{token}",
        "a one-time link: the token is the credential (members tests)",
    ),
    (
        "POST",
        "/dashboard/invite/{token}/join",
        "an invitation joined from the session of the account it is for, and no other: \
         `an_existing_account_joins_only_by_accepting_from_its_own_session`",
    ),
];

/// The router's name for each placeholder's path parameter.
const PARAMS: &[(&str, &str)] = &[
    ("{a}", "{agentId}"),
    ("{c}", "{conversationId}"),
    ("{m}", "{messageId}"),
    ("{s}", "{sourceId}"),
    ("{r}", "{runId}"),
    ("{act}", "{actorId}"),
    ("{aw}", "{webhookId}"),
    ("{dp}", "{dispatchId}"),
    ("{d}", "{datasetId}"),
    ("{v}", "{storeId}"),
    ("{u}", "{userId}"),
    ("{w}", "{ws}"),
    ("{k}", "{keyId}"),
    ("{h}", "{webhookId}"),
    ("{ct}", "{contactId}"),
    ("{n}", "{name}"),
    ("{t}", "{ticketNumber}"),
];

/// The route a matrix row exercises, in the router's spelling.
fn route_of(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    PARAMS
        .iter()
        .fold(path.to_owned(), |p, (from, to)| p.replace(from, to))
}

/// Every (method, path) the server's router declares, read from its source: each
/// `.route("…", …)` call and the method routers in its second argument.
fn declared_routes() -> BTreeSet<(String, String)> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.clone()];
    let mut routes = BTreeSet::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            // The call's arguments, up to its closing parenthesis.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(i, _)| i)
                .expect("balanced .route( call");
            let args = &rest[..end];
            let path = args
                .trim_start()
                .strip_prefix('"')
                .and_then(|a| a.split_once('"'))
                .map(|(p, _)| p.to_owned())
                .unwrap_or_else(|| panic!("a literal path in .route({args}"));
            let handlers = &args[args.find(',').expect("a method router") + 1..];
            let mut found = false;
            for method in ["get", "post", "put", "patch", "delete", "options"] {
                let call = format!("{method}(");
                let mut from = 0;
                while let Some(i) = handlers[from..].find(&call) {
                    let i = from + i;
                    let before = handlers[..i].chars().next_back();
                    // `get(` or `.get(`, not `agents::get(` or `forget(`.
                    if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                        routes.insert((method.to_ascii_uppercase(), path.clone()));
                        found = true;
                    }
                    from = i + call.len();
                }
            }
            assert!(found, "no method router found for {path} in {}", path);
            rest = &rest[end..];
        }
    }
    routes
}

#[test]
fn every_route_is_in_the_isolation_matrix() {
    let declared = declared_routes();
    assert!(
        declared.len() > 50,
        "the router's routes were read: {declared:?}"
    );
    // The OpenAPI document is built from the handlers, independently of the source
    // reading above: every operation it lists must be among the routes read, so a
    // route the reader misses cannot slip past the matrix.
    let doc: Value = serde_json::from_slice(&agentbase_server::openapi::document_json()).unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                .map(move |m| (m.to_ascii_uppercase(), path.clone()))
        })
        .collect();
    assert!(documented.len() > 30, "{documented:?}");
    let unread: Vec<_> = documented.difference(&declared).collect();
    assert!(
        unread.is_empty(),
        "documented operations the router reader did not find: {unread:?}"
    );
    let mut accounted: BTreeSet<(String, String)> = BTreeSet::new();
    for (method, path, _) in API.iter().chain(DASHBOARD) {
        accounted.insert((method.to_string(), route_of(path)));
    }
    for (method, path, _) in UNSCOPED {
        assert!(
            accounted.insert((method.to_string(), path.to_string())),
            "{method} {path} is both in the matrix and exempt"
        );
    }
    let missing: Vec<_> = declared.difference(&accounted).collect();
    assert!(
        missing.is_empty(),
        "routes with no row in the isolation matrix (add one to API or DASHBOARD, or \
         to UNSCOPED with the reason none is needed): {missing:?}"
    );
    let stale: Vec<_> = accounted.difference(&declared).collect();
    assert!(
        stale.is_empty(),
        "matrix rows for routes the router does not have: {stale:?}"
    );
}

/// One tenant's resources, named by placeholder.
#[derive(Clone)]
struct Ids(Vec<(&'static str, String)>);

impl Ids {
    fn fill(&self, s: &str) -> String {
        self.0
            .iter()
            .fold(s.to_owned(), |s, (from, to)| s.replace(from, to))
    }

    /// `text` with these ids replaced by their placeholders, so answers about two
    /// sets of ids compare equal when they say the same about each.
    fn blank(&self, text: &str) -> String {
        self.0
            .iter()
            .filter(|(_, id)| id.len() > 3)
            .fold(text.to_owned(), |s, (p, id)| s.replace(id.as_str(), p))
    }

    fn with(&self, placeholder: &'static str, id: &str) -> Ids {
        let mut out = self.clone();
        for (p, v) in &mut out.0 {
            if *p == placeholder {
                *v = id.to_owned();
            }
        }
        out
    }
}

/// Ids of the victim's kinds that exist nowhere, in the same shapes.
fn missing_ids(intruder_ws: &str) -> Ids {
    Ids(vec![
        ("{a}", "AAAAAAAAAAAAAAAAAAAAA".into()),
        ("{c}", "00000000-0000-4000-8000-000000000000".into()),
        ("{m}", "msg_AAAAAAAAAAAAAAAAAAAA".into()),
        ("{s}", "00000000-0000-4000-8000-000000000001".into()),
        ("{r}", "AAAAAAAAAAAAAAAAA".into()),
        ("{d}", "BBBBBBBBBBBBBBBBB".into()),
        ("{v}", "CCCCCCCCCCCCCCCCC".into()),
        ("{key}", "INPUT".into()),
        ("{act}", "apify~website-content-crawler".into()),
        ("{aw}", "DDDDDDDDDDDDDDDDD".into()),
        (
            "{dp}",
            "AAAAAAAAAAAAAAAAA.DDDDDDDDDDDDDDDDD.ACTOR.RUN.FAILED".into(),
        ),
        ("{u}", "victim-user".into()),
        ("{k}", "AAAAAAAAAAAA".into()),
        ("{h}", "AAAAAAAAAAAAAAAAAAAA".into()),
        ("{ct}", "absent_contact".into()),
        ("{n}", "absent_attr".into()),
        ("{t}", "2147483647".into()),
        ("{w}", intruder_ws.into()),
    ])
}

/// A victim workspace with one of everything, and an intruder with its own agent.
struct World {
    t: TestApp,
    victim: Ids,
    intruder_key: String,
    intruder_ws: String,
    own_agent: String,
}

async fn json_ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body
}

async fn world() -> World {
    let t = spawn_with(|s| s.rate_limit.requests = 1_000_000).await;
    let agent = t.scripted_agent().await;
    let r = t
        .client
        .chat(
            &agent,
            &agentbase_client::types::ChatRequest {
                message: Some("secret".into()),
                user_id: Some("victim-user".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (conversation, message) = (r.data.metadata.conversation_id.clone(), r.data.id.clone());
    let source = json_ok(
        t.raw(Method::POST, &format!("/api/v2/agents/{agent}/sources"))
            .json(&json!({"type": "text", "name": "secret notes", "content": "The vault code is 4711."}))
            .send()
            .await
            .unwrap(),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Training (without an embedder here, it fails) settles, for the source and
    // the agent, before anything is compared.
    let mut settled = false;
    for _ in 0..600 {
        let r = t
            .raw(
                Method::GET,
                &format!("/api/v2/agents/{agent}/sources/{source}"),
            )
            .send()
            .await
            .unwrap();
        let source_failed = json_ok(r).await["status"] == "failed";
        let r = t
            .raw(Method::GET, &format!("/api/v2/agents/{agent}"))
            .send()
            .await
            .unwrap();
        if source_failed && json_ok(r).await["status"] == "failed" {
            settled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(settled, "the victim's training never settled as failed");
    // A persistent webhook told of the crawler's runs: the run below makes its
    // dispatch, failed at once and never sent (its payload is past the bound), so
    // nothing about it moves while the matrix runs.
    let apify_hook = json_ok(
        t.raw(Method::POST, "/v2/webhooks")
            .json(
                &json!({"eventTypes": ["ACTOR.RUN.FAILED", "ACTOR.RUN.SUCCEEDED"],
                "condition": {"actorId": "apify~website-content-crawler"},
                "requestUrl": "https://victim.example/hook",
                "payloadTemplate": format!("[{}null]", "{{resource}},".repeat(1_200))}),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    let apify_hook = apify_hook["data"]["id"].as_str().unwrap().to_owned();
    // A crawl of a refused address ends at once; the run and its dataset remain.
    let run = json_ok(
        t.raw(
            Method::POST,
            "/v2/acts/apify~website-content-crawler/runs?waitForFinish=30",
        )
        .json(&json!({"startUrls": [{"url": "http://127.0.0.1:9/"}], "maxCrawlPages": 1}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    let key = t
        .app
        .accounts()
        .keys(Some(&t.workspace_id))
        .await
        .unwrap()
        .remove(0)
        .id;
    // A lead to leak (stored directly: the victim's agent is private, so the
    // widget would refuse it).
    t.app
        .record()
        .insert_lead(&agentbase_core::lead::Lead {
            id: agentbase_core::ids::uuid_v4(),
            workspace_id: t.workspace_id.clone(),
            agent_id: agent.clone(),
            conversation_id: Some(conversation.clone()),
            name: Some("Victim Lead".into()),
            email: Some("victim@example.com".into()),
            phone: None,
            created_at: t.app.now(),
        })
        .await
        .unwrap();
    // Never resolved: the endpoint only has to exist (no event is written after).
    let hook = json_ok(
        t.raw(Method::POST, &format!("/api/v2/agents/{agent}/webhooks"))
            .json(&json!({"url": "https://hooks.example.com/in", "events": ["leads.submit"]}))
            .send()
            .await
            .unwrap(),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A ticket to leak (number 1 of the victim's agent).
    let ticket = json_ok(
        t.raw(
            Method::POST,
            &format!("/api/v2/agents/{agent}/helpdesk/tickets"),
        )
        .json(&json!({"subject": "secret ticket", "description": "secret",
                          "customer": {"email": "victim@example.com"}}))
        .send()
        .await
        .unwrap(),
    )
    .await["ticketNumber"]
        .to_string();
    // A contact and a custom attribute to leak.
    json_ok(
        t.raw(
            Method::POST,
            &format!("/api/v1/chatbots/{agent}/custom-attributes"),
        )
        .json(&json!({"name": "victim_attr", "type": "text"}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    json_ok(
        t.raw(Method::POST, &format!("/api/v1/chatbots/{agent}/contacts"))
            .json(
                &json!({"users": [{"external_id": "victim_contact", "name": "Victim",
                "custom_attributes": {"victim_attr": "secret"}}]}),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    let dispatches = json_ok(
        t.raw(Method::GET, "/v2/webhook-dispatches")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let dispatch = dispatches["data"]["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (intruder_ws, intruder_key) = t.other_workspace(Plan::Standard).await;
    let own_agent = t
        .client_for(&intruder_key)
        .create_agent(&agentbase_client::types::CreateAgentBody {
            name: "mine".into(),
            model: Some("scripted".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let victim = Ids(vec![
        ("{a}", agent),
        ("{c}", conversation),
        ("{m}", message),
        ("{s}", source),
        ("{r}", run["data"]["id"].as_str().unwrap().to_owned()),
        (
            "{d}",
            run["data"]["defaultDatasetId"].as_str().unwrap().to_owned(),
        ),
        (
            "{v}",
            run["data"]["defaultKeyValueStoreId"]
                .as_str()
                .unwrap()
                .to_owned(),
        ),
        ("{key}", "INPUT".into()),
        ("{act}", "apify~website-content-crawler".into()),
        ("{aw}", apify_hook),
        ("{dp}", dispatch),
        ("{u}", "victim-user".into()),
        ("{k}", key),
        ("{h}", hook),
        ("{ct}", "victim_contact".into()),
        ("{n}", "victim_attr".into()),
        ("{t}", ticket),
        ("{w}", intruder_ws.clone()),
    ]);
    World {
        t,
        victim,
        intruder_key,
        intruder_ws,
        own_agent,
    }
}

/// Status, error code, and the body with the named ids blanked.
async fn api_call(
    t: &TestApp,
    key: &str,
    ids: &Ids,
    (method, path, body): &Endpoint,
) -> (u16, Option<String>, String) {
    let mut rb = reqwest::Client::new()
        .request(method.clone(), t.url(&ids.fill(path)))
        .bearer_auth(key);
    if let Some(b) = body {
        rb = rb.body(ids.fill(b));
    }
    let (status, code, body) = outcome(rb.send().await.unwrap()).await;
    (status, code, ids.blank(&body.to_string()))
}

/// Whether a row names a conversation, message or source (ids that a second pass
/// puts under the intruder's own agent).
fn names_sub_resource(path: &str, body: Option<&str>) -> bool {
    let names = |s: &str| {
        ["{c}", "{m}", "{s}", "{h}", "{ct}", "{n}"]
            .iter()
            .any(|p| s.contains(p))
    };
    names(path) || body.is_some_and(names)
}

#[tokio::test]
async fn another_workspaces_resources_are_indistinguishable_from_missing_ones() {
    let w = world().await;
    let t = &w.t;
    let missing = missing_ids(&w.intruder_ws);
    let victim_before = snapshot(t, &w.victim).await;
    for endpoint in API {
        let (method, path, body) = endpoint;
        let foreign = api_call(t, &w.intruder_key, &w.victim, endpoint).await;
        let absent = api_call(t, &w.intruder_key, &missing, endpoint).await;
        assert_eq!(foreign, absent, "{method} {path} {body:?}");
        let restore_no_op = path.ends_with("/restore") && foreign.0 == 200;
        assert!(
            foreign.0 == 404 || foreign.0 == 400 || restore_no_op,
            "{method} {path}: {foreign:?}"
        );

        // The intruder's own agent with the victim's conversation, message and
        // source ids.
        let names_agent = path.contains("{a}") || body.is_some_and(|b| b.contains("{a}"));
        if names_agent && names_sub_resource(path, *body) {
            let foreign = api_call(
                t,
                &w.intruder_key,
                &w.victim.with("{a}", &w.own_agent),
                endpoint,
            )
            .await;
            let absent = api_call(
                t,
                &w.intruder_key,
                &missing.with("{a}", &w.own_agent),
                endpoint,
            )
            .await;
            if *path == "/api/v1/chat"
                || path.ends_with("/take-over")
                || path.ends_with("/hand-back")
            {
                // v1 conversation ids are scoped to their workspace: the intruder
                // gets a fresh conversation under the same id, never the victim's,
                // and cannot tell whether the id is used elsewhere. (The handoff
                // rows then act on those conversations of the intruder's own.)
                assert_eq!((foreign.0, absent.0), (200, 200), "{foreign:?} {absent:?}");
            } else {
                assert_eq!(foreign, absent, "{method} {path} {body:?} with own agent");
            }
        }
    }
    assert_eq!(
        snapshot(t, &w.victim).await,
        victim_before,
        "the victim's resources are untouched"
    );
}

/// Everything the victim can read about its resources, through its own key.
async fn snapshot(t: &TestApp, v: &Ids) -> Vec<String> {
    let mut out = Vec::new();
    for path in [
        "/api/v2/agents/{a}",
        "/api/v2/agents/{a}/actions",
        "/api/v2/agents/{a}/webhooks",
        "/api/v2/agents/{a}/webhooks/{h}/deliveries",
        "/api/v1/get-leads?chatbotId={a}",
        "/api/v1/chatbots/{a}/contacts",
        "/api/v1/chatbots/{a}/custom-attributes",
        "/api/v2/agents/{a}/identity-verification",
        "/api/v2/agents/{a}/sources",
        "/api/v2/agents/{a}/sources/{s}",
        "/api/v2/agents/{a}/sources/summary",
        "/api/v2/agents/{a}/conversations/{c}",
        "/v2/actor-runs/{r}",
        "/v2/datasets/{d}",
        "/v2/datasets/{d}/items",
        "/v2/key-value-stores/{v}",
        "/v2/key-value-stores/{v}/keys",
        "/v2/key-value-stores/{v}/records/INPUT",
        "/v2/webhooks",
        "/v2/webhooks/{aw}",
        "/v2/webhook-dispatches",
    ] {
        let r = t.raw(Method::GET, &v.fill(path)).send().await.unwrap();
        let status = r.status().as_u16();
        let mut body: Value = r.json().await.unwrap_or(Value::Null);
        // Reading a resource is not changing it: drop the fields that move by
        // themselves (timestamps of use, the agent's cached counters).
        for k in ["lastUsedAt", "updatedAt", "finishedAt", "stats", "usage"] {
            strip(&mut body, k);
        }
        out.push(format!("{path} {status} {body}"));
    }
    let keys = t.app.accounts().keys(None).await.unwrap();
    out.push(format!(
        "revoked keys: {:?}",
        keys.iter()
            .filter(|k| k.revoked_at.is_some())
            .map(|k| &k.id)
            .collect::<Vec<_>>()
    ));
    out
}

fn strip(v: &mut Value, key: &str) {
    match v {
        Value::Object(m) => {
            m.remove(key);
            m.values_mut().for_each(|x| strip(x, key));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip(x, key)),
        _ => {}
    }
}

#[tokio::test]
async fn lists_show_only_the_callers_own() {
    let w = world().await;
    let t = &w.t;
    let secrets: Vec<&str> = w
        .victim
        .0
        .iter()
        // Ticket numbers count per agent from 1: not secrets, and too short to look for.
        .filter(|(p, _)| *p != "{u}" && *p != "{w}" && *p != "{t}")
        .map(|(_, id)| id.as_str())
        .collect();
    for path in ["/api/v2/agents", "/api/v1/get-chatbots"] {
        let r = reqwest::Client::new()
            .get(t.url(path))
            .bearer_auth(&w.intruder_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains(&w.own_agent),
            "{path} lists the intruder's agent: {body}"
        );
        for id in &secrets {
            assert!(!body.contains(id), "{path} shows the victim's {id}: {body}");
        }
    }
    // Apify's lists of webhooks and dispatches: the intruder has none.
    for path in [
        "/v2/webhooks",
        "/v2/webhook-dispatches",
        "/v2/datasets?unnamed=1",
        "/v2/key-value-stores?unnamed=1",
        "/v2/acts/apify~website-content-crawler/webhooks",
        "/v2/actors/apify~website-content-crawler/webhooks",
    ] {
        let r = reqwest::Client::new()
            .get(t.url(path))
            .bearer_auth(&w.intruder_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains("\"total\":0"), "{path}: {body}");
        for id in &secrets {
            assert!(!body.contains(id), "{path} shows the victim's {id}: {body}");
        }
    }
    let op = sign_in(t).await;
    let (status, html) = op
        .get(&format!("/dashboard/w/{}/agents", w.intruder_ws))
        .await;
    assert_eq!(status, 200);
    assert!(html.contains(&w.own_agent));
    for id in &secrets {
        assert!(
            !html.contains(id),
            "the intruder workspace's agents page shows {id}"
        );
    }
}

#[tokio::test]
async fn dashboard_pages_of_one_workspace_never_reach_anothers_resources() {
    let w = world().await;
    let t = &w.t;
    let missing = missing_ids(&w.intruder_ws);
    let op = sign_in(t).await;
    let victim_before = snapshot(t, &w.victim).await;
    let call = |ids: Ids, (method, path, body): &'static Endpoint| {
        let op = &op;
        async move {
            let url = ids.fill(path);
            let r = match (method.as_str(), body) {
                ("GET", _) => op.request(Method::GET, &url).send().await.unwrap(),
                (_, Some("multipart")) => {
                    let form = reqwest::multipart::Form::new()
                        .text("_csrf", op.csrf.clone())
                        .text("type", "text")
                        .text("name", "pwned")
                        .text("content", "planted by another workspace");
                    op.request(Method::POST, &url)
                        .multipart(form)
                        .send()
                        .await
                        .unwrap()
                }
                (_, Some(b)) if b.starts_with('{') => op
                    .request(Method::POST, &url)
                    .header("x-csrf-token", &op.csrf)
                    .header("content-type", "application/json")
                    .body(ids.fill(b))
                    .send()
                    .await
                    .unwrap(),
                (_, b) => {
                    let mut form = format!("_csrf={}", op.csrf);
                    if let Some(b) = b.filter(|b| !b.is_empty()) {
                        form.push('&');
                        form.push_str(b);
                    }
                    op.request(Method::POST, &url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(form)
                        .send()
                        .await
                        .unwrap()
                }
            };
            let status = r.status().as_u16();
            let location = r
                .headers()
                .get("location")
                .map(|l| ids.blank(l.to_str().unwrap()));
            let body = ids.blank(&r.text().await.unwrap());
            (status, location, body)
        }
    };
    for endpoint in DASHBOARD {
        let (method, path, _) = endpoint;
        let foreign = call(w.victim.clone(), endpoint).await;
        let absent = call(missing.clone(), endpoint).await;
        assert_eq!(foreign, absent, "{method} {path}");
        let refused = foreign.0 == 404
            || foreign.0 == 400
            || foreign.1.as_deref().is_some_and(|l| l.contains("error="));
        assert!(refused, "{method} {path}: {foreign:?}");
        if names_sub_resource(path, endpoint.2) {
            let foreign = call(w.victim.with("{a}", &w.own_agent), endpoint).await;
            let absent = call(missing.with("{a}", &w.own_agent), endpoint).await;
            assert_eq!(foreign, absent, "{method} {path} with own agent");
        }
    }
    assert_eq!(
        snapshot(t, &w.victim).await,
        victim_before,
        "the victim's resources are untouched"
    );
}

/// A workspace member (an owner, the strongest role) signed in to the intruder
/// workspace: every dashboard route of the matrix, under the victim's workspace
/// path with the victim's ids, is a 404 (the workspace does not exist for them)
/// and changes nothing.
#[tokio::test]
async fn a_member_reaches_none_of_another_workspaces_dashboard_routes() {
    let w = world().await;
    let t = &w.t;
    let member =
        crate::members::member_session(t, &w.intruder_ws, "owner@intruder.example", "owner").await;
    let victim = w.victim.with("{w}", &t.workspace_id);
    let victim_before = snapshot(t, &w.victim).await;
    for (method, path, body) in DASHBOARD {
        let url = victim.fill(path);
        let r = match body {
            None => member.request(Method::GET, &url).send().await.unwrap(),
            Some(b) => member
                .request(Method::POST, &url)
                .header("x-csrf-token", &member.csrf)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("_csrf={}&{}", member.csrf, victim.fill(b)))
                .send()
                .await
                .unwrap(),
        };
        assert_eq!(r.status(), 404, "{method} {path}");
    }
    for path in ["agents", "keys", "usage", "members"] {
        let url = format!("/dashboard/w/{}/{path}", t.workspace_id);
        assert_eq!(member.get(&url).await.0, 404, "{url}");
    }
    assert_eq!(
        snapshot(t, &w.victim).await,
        victim_before,
        "the victim's resources are untouched"
    );
}
