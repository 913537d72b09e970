#!/usr/bin/env python3
"""Runs schemathesis (PyPI, pinned in requirements.txt) with the official Chatbase
schema against an agentbase server, and prints what it found as JSON:
{"generated": N, "failures": [{"operation", "check", "detail"}...]}.

Usage:
  python3 compat/schemathesis_run.py --base-url http://127.0.0.1:PORT/api/v2 --api-key KEY
      --agent-id ID --spare-agent-id ID2 [--max-examples N] [--work-dir DIR]

The schema is read from ../shared/reference/ unchanged; only the base URL differs
(`--url`). Path parameters named agentId get a real agent (so operations get past
404); DELETE /agents/{agentId} gets a spare one, so deleting it does not empty the
rest of the run. Every check schemathesis has runs (`--checks all`)."""

import argparse
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = os.path.join(HERE, "..", "..", "shared", "reference", "chatbase-openapi-v2-core.json")


def failures_of(junit_path):
    """(operation, check title, detail) for every failure in a JUnit report."""
    out = []
    for case in ET.parse(junit_path).getroot().iter("testcase"):
        for failure in list(case.iter("failure")) + list(case.iter("error")):
            text = failure.text or failure.get("message") or ""
            # Each numbered test case lists its failed checks as "- TITLE" lines.
            for block in re.split(r"\n(?=\d+\. Test Case ID)", text):
                titles = re.findall(r"^- (?:ST\d+ )?(.+)$", block, re.M)
                for title in titles or [failure.get("message") or "error"]:
                    out.append({"operation": case.get("name"), "check": title.strip(), "detail": block[:1500]})
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-url", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--agent-id", required=True)
    p.add_argument("--spare-agent-id", required=True)
    p.add_argument("--max-examples", type=int, default=100)
    p.add_argument("--work-dir", default=".")
    p.add_argument("--seed", default="1")
    args = p.parse_args(argv)
    config = os.path.join(args.work_dir, "schemathesis.toml")
    with open(config, "w") as f:
        f.write(
            "[parameters]\n"
            f'"path.agentId" = "{args.agent_id}"\n\n'
            "[[operations]]\n"
            'include-path = "/agents/{agentId}"\n'
            'include-method = "DELETE"\n'
            f'parameters = {{ "path.agentId" = "{args.spare_agent_id}" }}\n'
        )
    report_dir = os.path.join(args.work_dir, "reports")
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", config, "run", SPEC,
        "--url", args.base_url,
        "-H", f"Authorization: Bearer {args.api_key}",
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(args.max_examples),
        "--workers", "1",
        "--seed", args.seed,
        "--request-timeout", "30",
        "--suppress-health-check", "all",
        "--report", "junit", "--report-dir", report_dir,
        "--no-color",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=args.work_dir)
    generated = sum(int(n) for n in re.findall(r"(\d+) generated", done.stdout))
    junits = [os.path.join(report_dir, n) for n in os.listdir(report_dir) if n.endswith(".xml")] if os.path.isdir(report_dir) else []
    report = {
        "generated": generated,
        "exit": done.returncode,
        "failures": [f for j in junits for f in failures_of(j)],
        "summary": done.stdout[-3000:],
        "stderr": done.stderr[-2000:],
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if junits else 1


if __name__ == "__main__":
    sys.exit(main())
