#!/usr/bin/env python3
"""Calls every implemented v2 endpoint the way a plain `requests` integration would,
including the error cases, and records every response for openapi_check.py.

Usage: python3 compat/api_tour.py --base-url URL --api-key KEY [--record FILE]

The tour creates its own agent, so it does not depend on what else the server holds.
Besides recording, it checks the behaviour the contract states (status codes, error
codes, what the next call needs); the shapes are left to the OpenAPI check. Prints a
JSON report and exits 1 on any failed check."""

import argparse
import datetime
import json
import sys
import traceback

import requests

from compat_common import Recorder


class Tour:
    def __init__(self, base_url, api_key, recorder):
        self.base = base_url.rstrip("/")
        self.key = api_key
        self.recorder = recorder
        self.session = requests.Session()
        self.passed = []
        self.failed = []

    def call(self, case, method, path, *, json_body=None, params=None, auth=True, data=None, key=None):
        self.recorder.case = case
        headers = {}
        if auth:
            headers["Authorization"] = f"Bearer {key or self.key}"
        if data is not None:
            headers["Content-Type"] = "application/json"
        return self.session.request(
            method, f"{self.base}{path}", json=json_body, params=params, headers=headers, data=data, timeout=30
        )

    def expect(self, response, status, case, code=None):
        ok = response.status_code == status
        body = None
        try:
            body = response.json()
        except ValueError:
            ok = False
        if ok and code is not None:
            ok = isinstance(body, dict) and body.get("error", {}).get("code") == code
        entry = {"check": f"{case}: {status}{' ' + code if code else ''}"}
        if ok:
            self.passed.append(entry["check"])
        else:
            self.failed.append({**entry, "status": response.status_code, "body": response.text[:1000]})
        return body if ok else None

    def check(self, ok, what, **detail):
        if ok:
            self.passed.append(what)
        else:
            self.failed.append({"check": what, **detail})
        return ok


def text_of(parts):
    return "".join(p.get("text", "") for p in parts or [] if p.get("type") == "text")


def run(t):
    t.expect(t.call("health", "GET", "/health", auth=False), 200, "health without a key")
    t.expect(t.call("list agents", "GET", "/agents"), 200, "list agents")
    created = t.expect(
        t.call("create agent", "POST", "/agents", json_body={"name": "Compat tour", "instructions": "Be brief."}),
        201,
        "create agent",
    )
    if not created:
        return
    agent = f"/agents/{created['id']}"
    t.expect(t.call("get agent", "GET", agent), 200, "get agent")
    t.expect(t.call("update agent", "PUT", agent, json_body={"name": "Compat tour 2"}), 200, "update agent")
    spare = t.expect(t.call("create agent", "POST", "/agents", json_body={"name": "Compat spare"}), 201, "create a second agent")
    if spare:
        t.expect(t.call("delete agent", "DELETE", f"/agents/{spare['id']}"), 200, "delete agent")
        t.expect(t.call("get deleted agent", "GET", f"/agents/{spare['id']}"), 404, "get a deleted agent", "AGENT_NOT_FOUND")

    # Chat, non-streaming.
    first = t.expect(
        t.call("chat", "POST", f"{agent}/chat", json_body={"message": "Hello tour", "stream": False, "userId": "tour-user"}),
        200,
        "chat without streaming",
    )
    if not first:
        return
    meta = first["data"]["metadata"]
    conv = meta["conversationId"]
    t.check(text_of(first["data"]["parts"]) == "Echo: Hello tour", "the scripted answer comes back", parts=first["data"]["parts"])
    t.check(meta.get("userId") == "tour-user", "userId is applied to a new conversation", metadata=meta)
    follow = t.expect(
        t.call("chat follow-up", "POST", f"{agent}/chat", json_body={"message": "And again", "conversationId": conv, "stream": False, "userId": "someone-else"}),
        200,
        "chat in the same conversation",
    )
    if follow:
        t.check(follow["data"]["metadata"]["conversationId"] == conv, "the conversation is kept")
        t.check(follow["data"]["metadata"]["userId"] == "tour-user", "userId is immutable once set", metadata=follow["data"]["metadata"])

    # A client action: tool call, result, continuation.
    tool = t.expect(
        t.call("chat tool call", "POST", f"{agent}/chat", json_body={"message": '[[reply:Checking.]] [[tool:lookupOrder {"orderId":"ORD-123"}]]', "conversationId": conv, "stream": False}),
        200,
        "chat that calls a tool",
    )
    if tool:
        calls = [p for p in tool["data"]["parts"] if p["type"] == "tool-call"]
        t.check(tool["data"]["metadata"]["finishReason"] == "tool-calls", "finishReason is tool-calls", metadata=tool["data"]["metadata"])
        t.check(len(calls) == 1 and calls[0].get("input") == {"orderId": "ORD-123"}, "the tool-call part carries its input", parts=tool["data"]["parts"])
        if calls:
            path = f"{agent}/conversations/{conv}/tool-result"
            t.expect(t.call("tool-result", "POST", path, json_body={"toolCallId": calls[0]["toolCallId"], "output": {"status": "shipped"}}), 200, "submit a tool result")
            t.expect(t.call("tool-result again", "POST", path, json_body={"toolCallId": calls[0]["toolCallId"], "output": 1}), 404, "submit the same tool result twice", "RESOURCE_TOOL_CALL_NOT_FOUND")
            cont = t.expect(t.call("continuation", "POST", f"{agent}/chat", json_body={"conversationId": conv, "stream": False}), 200, "continue without a message")
            if cont:
                t.check(text_of(cont["data"]["parts"]).startswith("Tool lookupOrder returned"), "the continuation answers from the tool result", parts=cont["data"]["parts"])
                t.check(cont["data"]["metadata"]["userMessageId"] == tool["data"]["metadata"]["userMessageId"], "a continuation's userMessageId is the last user message")

    # Conversations.
    today = datetime.datetime.now(datetime.timezone.utc).date()
    t.expect(t.call("list conversations", "GET", f"{agent}/conversations"), 200, "list conversations")
    t.expect(t.call("list conversations", "GET", f"{agent}/conversations", params={"startDate": today.isoformat(), "endDate": today.isoformat(), "limit": 5}), 200, "list conversations within dates")
    t.expect(t.call("list conversations", "GET", f"{agent}/conversations", params={"startDate": f"{today.isoformat()}T00:00:00Z"}), 200, "list conversations from a datetime")
    t.expect(t.call("list conversations", "GET", f"{agent}/conversations", params={"startDate": "2030-01-02", "endDate": "2030-01-01"}), 400, "an inverted date range", "VALIDATION_INVALID_DATE_RANGE")
    t.expect(t.call("list conversations", "GET", f"{agent}/conversations", params={"limit": 0}), 400, "limit 0")
    got = t.expect(t.call("get conversation", "GET", f"{agent}/conversations/{conv}"), 200, "get a conversation")
    t.expect(t.call("get conversation", "GET", f"{agent}/conversations/00000000-0000-4000-8000-000000000000"), 404, "get an unknown conversation", "RESOURCE_NOT_FOUND")
    page = t.expect(t.call("messages", "GET", f"{agent}/conversations/{conv}/messages", params={"limit": 2}), 200, "list messages")
    if page and page["pagination"]["cursor"]:
        t.expect(t.call("messages", "GET", f"{agent}/conversations/{conv}/messages", params={"limit": 2, "cursor": page["pagination"]["cursor"]}), 200, "list older messages with the cursor")
    if got and got["pagination"]["cursor"]:
        t.expect(t.call("messages", "GET", f"{agent}/conversations/{conv}/messages", params={"cursor": got["pagination"]["cursor"]}), 200, "the conversation's cursor works on messages")
    t.expect(t.call("user conversations", "GET", f"{agent}/users/tour-user/conversations"), 200, "a user's conversations")
    t.expect(t.call("pause", "PATCH", f"{agent}/conversations/{conv}", json_body={"paused": True}), 200, "pause a conversation")
    t.expect(t.call("resume", "PATCH", f"{agent}/conversations/{conv}", json_body={"paused": False}), 200, "resume a conversation")
    t.expect(t.call("export", "GET", f"{agent}/conversations/export"), 200, "export conversations")
    t.expect(t.call("export", "GET", f"{agent}/conversations/export", params={"include": "summary", "limit": 1}), 200, "export summaries")

    # Feedback and retry on the first answer.
    assistant, user = first["data"]["id"], meta["userMessageId"]
    feedback = f"{agent}/conversations/{conv}/messages"
    t.expect(t.call("feedback", "PATCH", f"{feedback}/{assistant}/feedback", json_body={"feedback": "positive"}), 200, "positive feedback")
    t.expect(t.call("feedback", "PATCH", f"{feedback}/{assistant}/feedback", json_body={"feedback": None}), 200, "clear feedback")
    t.expect(t.call("feedback", "PATCH", f"{feedback}/{user}/feedback", json_body={"feedback": "negative"}), 422, "feedback on a user message", "RESOURCE_MESSAGE_NOT_ASSISTANT")
    t.expect(t.call("feedback", "PATCH", f"{feedback}/msg_nope/feedback", json_body={"feedback": "negative"}), 404, "feedback on an unknown message", "RESOURCE_MESSAGE_NOT_FOUND")
    retry_conv = t.expect(t.call("chat", "POST", f"{agent}/chat", json_body={"message": "Retry me", "stream": False}), 200, "chat to retry")
    if retry_conv:
        rc = retry_conv["data"]["metadata"]["conversationId"]
        retried = t.expect(t.call("retry", "POST", f"{agent}/conversations/{rc}/retry", json_body={"messageId": retry_conv["data"]["id"], "stream": False}), 200, "retry without streaming")
        if retried:
            t.check(text_of(retried["data"]["parts"]) == "Echo: Retry me", "retry regenerates from the preceding user message", parts=retried["data"]["parts"])
        t.expect(t.call("retry", "POST", f"{agent}/conversations/{rc}/retry", json_body={"messageId": "msg_nope", "stream": False}), 404, "retry an unknown message", "CHAT_RETRY_MESSAGE_NOT_FOUND")

    # Errors.
    t.expect(t.call("errors", "GET", "/agents", auth=False), 401, "no API key", "AUTH_MISSING_API_KEY")
    t.expect(t.call("errors", "GET", "/agents", key="agb_not_a_real_key"), 401, "a wrong API key", "AUTH_INVALID_API_KEY")
    t.expect(t.call("errors", "POST", "/agents/no-such-agent/chat", json_body={"message": "hi", "stream": False}), 404, "chat with an unknown agent", "AGENT_NOT_FOUND")
    t.expect(t.call("errors", "POST", f"{agent}/chat", json_body={"message": 5, "stream": False}), 400, "a message that is not a string", "VALIDATION_INVALID_BODY")
    t.expect(t.call("errors", "POST", f"{agent}/chat", data="{not json"), 400, "a body that is not JSON")
    t.expect(t.call("errors", "PATCH", f"{agent}/conversations/{conv}", json_body={"paused": True, "extra": 1}), 400, "an unknown field where additionalProperties is false")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="v2 base, e.g. http://127.0.0.1:8080/api/v2")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--record")
    args = parser.parse_args(argv)
    with Recorder(args.record, "python-requests") as recorder:
        tour = Tour(args.base_url, args.api_key, recorder)
        try:
            run(tour)
        except Exception as error:  # an unexpected shape is a failed check, not a crash
            tour.check(False, "the tour runs to the end", error=repr(error), trace=traceback.format_exc()[-2000:])
    json.dump({"passed": tour.passed, "failed": tour.failed, "responses": len(recorder.entries)}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if tour.failed else 0


if __name__ == "__main__":
    sys.exit(main())
