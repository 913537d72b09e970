"""schemathesis against agentbase's OWN OpenAPI document (`/api/v2/openapi.json`):
every operation gets generated requests, positive (valid per the document) and
negative (invalid per the document), sent with a valid key. For about half of the
cases the path parameters name real resources (a seeded agent, conversation,
message, source, crawl run and dataset, passed on the command line), so the
handlers behind the 404s run too. Each response is checked for:

  not_a_server_error            no 5xx
  status_code_conformance       the status is one the document lists
  content_type_conformance      the Content-Type is the one the document gives
  response_schema_conformance   the body matches the document's schema
  response_headers_conformance  documented headers are present and valid
  negative_data_rejection       data that breaks the document is refused (4xx)

The official Chatbase schemas are checked by another script; this one keeps the
server and its own document in agreement.

Generation is derandomised (the seed is fixed), so a run is reproducible; every
failure is reported with a curl command that replays it. Prints a JSON report and
exits non-zero when anything failed.

Outbound safety: request bodies can make the server fetch URLs (crawl runs, link
sources). Every URL-like string in a generated body is replaced with a loopback
address, which the server's SSRF guard refuses, so a run never reaches another host.
"""

import argparse
import json
import sys
import time

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

POSITIVE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
NEGATIVE_CHECKS = POSITIVE_CHECKS + [negative_data_rejection]

SAFE_URL = "http://127.0.0.1:9/refused"


def neutralise(value):
    """Every URL-like string replaced with one the SSRF guard refuses."""
    if isinstance(value, str):
        lowered = value.lower()
        if "://" in lowered or lowered.startswith(("//", "www.")):
            return SAFE_URL
        return value
    if isinstance(value, list):
        return [neutralise(v) for v in value]
    if isinstance(value, dict):
        return {k: neutralise(v) for k, v in value.items()}
    return value


def fresh_agent(base, headers):
    r = requests.post(f"{base}/api/v2/agents", json={"name": "disposable"}, headers=headers, timeout=30)
    r.raise_for_status()
    return r.json()["id"]


def fresh_source(base, headers, agent):
    r = requests.post(
        f"{base}/api/v2/agents/{agent}/sources",
        json={"type": "text", "name": "disposable", "content": "Disposable text for a delete."},
        headers=headers,
        timeout=30,
    )
    r.raise_for_status()
    return r.json()["id"]


def failure_text(exc):
    """The titles and messages of a check failure (a group or a single one)."""
    parts = []
    for f in getattr(exc, "exceptions", None) or [exc]:
        title = getattr(f, "title", type(f).__name__)
        message = getattr(f, "message", str(f))
        parts.append((title, message.strip()[:600]))
    return parts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--origin", required=True, help="http://host:port")
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--ids", required=True, help="JSON: real values for path parameters")
    ap.add_argument("--examples", type=int, default=30, help="cases per operation and mode")
    ap.add_argument("--seed", type=int, default=20261203)
    args = ap.parse_args()

    origin = args.origin.rstrip("/")
    headers = {"Authorization": f"Bearer {args.api_key}"}
    ids = json.loads(args.ids)
    # The key goes through schemathesis' own auth configuration (the document's
    # `bearer` scheme), not as a header added to every call: negative cases that
    # drop or break the Authorization header must reach the server that way, and
    # their 401 is held against the document like any other answer.
    config = SchemathesisConfig.from_dict({"auth": {"openapi": {"bearer": {"bearer": args.api_key}}}})
    schema = schemathesis.openapi.from_url(f"{origin}/api/v2/openapi.json", config=config)
    session = requests.Session()

    cases = 0
    statuses = {}
    failures = {}
    operations = []
    started = time.monotonic()

    def one(case, real, label, mode, checks, destructive):
        nonlocal cases
        if real:
            for name in list(case.path_parameters or {}):
                if name in ids:
                    case.path_parameters[name] = ids[name]
            if destructive and case.path_parameters:
                # Deletes get a resource of their own, so the seeded ones
                # stay for the other operations.
                if "agentId" in case.path_parameters:
                    case.path_parameters["agentId"] = fresh_agent(origin, headers)
                if "sourceId" in case.path_parameters:
                    case.path_parameters["sourceId"] = fresh_source(
                        origin, headers, case.path_parameters["agentId"]
                    )
            if destructive and case.query and "chatbotId" in case.query:
                case.query["chatbotId"] = fresh_agent(origin, headers)
            elif case.query and "chatbotId" in case.query:
                case.query["chatbotId"] = ids["agentId"]
            if isinstance(case.body, dict):
                # Bodies name resources too (a chat turn's conversationId, a retry's
                # messageId, v1's chatbotId): real ones, so the handlers' paths for
                # an existing conversation run as well.
                for name in list(case.body):
                    if name == "chatbotId":
                        case.body[name] = ids["agentId"]
                    elif name in ids and name != "agentId":
                        case.body[name] = ids[name]
        if case.body is not None and not isinstance(case.body, (bytes, str)):
            case.body = neutralise(case.body)
        try:
            response = case.call(base_url=origin, session=session, timeout=60)
        except requests.RequestException as exc:  # the server hung up or hung
            entry = failures.setdefault((label, mode.value, "transport"), {"count": 0})
            entry["count"] += 1
            entry.setdefault("message", str(exc)[:600])
            entry.setdefault("curl", case.as_curl_command(base_url=origin))
            return
        cases += 1
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=checks)
        except (Exception, BaseExceptionGroup) as exc:  # check failures (a FailureGroup is a BaseExceptionGroup): recorded, the run goes on
            for title, message in failure_text(exc):
                key = (label, mode.value, title)
                entry = failures.setdefault(key, {"count": 0})
                entry["count"] += 1
                if "message" not in entry:
                    entry["message"] = message
                    entry["status"] = response.status_code
                    entry["response"] = response.text[:400]
                    entry["curl"] = case.as_curl_command(base_url=origin)

    for result in schema.get_all_operations():
        op = result.ok()
        label = f"{op.method.upper()} {op.path}"
        operations.append(label)
        destructive = op.method.upper() == "DELETE"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            checks = POSITIVE_CHECKS if mode == GenerationMode.POSITIVE else NEGATIVE_CHECKS
            try:
                strategy = op.as_strategy(generation_mode=mode)
            except Exception as e:  # an operation the mode cannot generate for
                failures.setdefault((label, mode.value, "generation"), {"count": 0, "message": str(e)})
                continue

            # Hypothesis refuses a test function with defaults, so the loop's
            # values reach it through this closure.
            def make(strategy, label, mode, checks, destructive):
                @settings(
                    max_examples=args.examples,
                    derandomize=True,
                    database=None,
                    deadline=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=strategy, real=st.booleans())
                def run(case, real):
                    one(case, real, label, mode, checks, destructive)

                return run

            run = make(strategy, label, mode, checks, destructive)

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                # Nothing in the operation can be made invalid (no parameters, no
                # body): there are no negative cases to send.
                pass

    report = {
        "cases": cases,
        "operations": operations,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": round(time.monotonic() - started, 1),
        "failures": [
            {"operation": k[0], "mode": k[1], "check": k[2], **v} for k, v in sorted(failures.items())
        ],
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
