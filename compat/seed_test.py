#!/usr/bin/env python3
"""Runs the seed's Python snippets (shared/reference/seed_snippets.py, imported as they
are: only their CHATBASE host is set) against an agentbase server.

Usage:
  python3 compat/seed_test.py --base-url URL --api-key KEY --agent-id ID
      [--limited-base-url URL --limited-api-key KEY --limited-agent-id ID]
      [--record TRANSCRIPT.jsonl]

- fetch_all_conversations: the server first gets more than one page of conversations
  (the snippet asks for 100 a page), then the snippet pages through them all; every
  conversation must come back exactly once and the count must equal `total`.
- chat_with_backoff: against a server with a tight rate limit (the --limited-* one),
  the window is used up, then the snippet is called: it must be told 429 with a
  whole-second Retry-After, sleep that long, and succeed on the very next attempt.
- upload_text_to_chatbase: the snippet replaces the agent's data with a text (it
  sends no `chatbotName`, which agentbase treats as optional); it must answer
  `{"chatbotId"}`, the text must train, and retrieval testing must find it.
- start_crawl, wait_for_run, build_corpus: the Apify pipeline with only APIFY set to
  the server: a small site served on loopback is crawled through the Apify-compatible
  endpoints, the dataset comes back, build_corpus joins it and upload_text_to_chatbase
  trains the agent on it (the server must allow private networks for the crawler).
- start_crawl on the Rust Book (--rust-book DIR, the mdBook the toolchain installs,
  served on loopback): with the snippet's max_depth=2, max_pages=40 the run returns
  40 pages. mdBook writes its table of contents with a script (`toc.js`), with a
  `<noscript><iframe src="toc.html">` fallback; WCC's default crawler type renders or
  expands the iframe, so the chapters are found.

Every response is recorded (--record) for openapi_check.py. Prints a JSON report and
exits 1 on any failed check."""

import argparse
import contextlib
import io
import json
import sys
import time
import traceback

import requests

from compat_common import Recorder, load_seed_snippets, origin_of

PAGE = 100  # what fetch_all_conversations asks for; more than this makes two pages


class Checks:
    def __init__(self):
        self.passed = []
        self.failed = []

    def expect(self, ok, what, **detail):
        (self.passed if ok else self.failed).append({"check": what, **({} if ok else detail)})
        return ok


def pagination(seed, args, checks, recorder):
    base = args.base_url.rstrip("/")
    headers = {"Authorization": f"Bearer {args.api_key}"}
    list_url = f"{base}/agents/{args.agent_id}/conversations"
    recorder.case = "setup"
    first = requests.get(list_url, headers=headers, params={"limit": 1}, timeout=30)
    first.raise_for_status()
    existing = first.json()["pagination"]["total"]
    created = set()
    with requests.Session() as session:
        for i in range(max(0, PAGE + 5 - existing)):
            r = session.post(
                f"{base}/agents/{args.agent_id}/chat",
                headers=headers,
                json={"message": f"Conversation number {i}", "stream": False},
                timeout=30,
            )
            if r.status_code != 200:
                checks.expect(False, "creating a conversation succeeds", status=r.status_code, body=r.text[:500])
                return None
            created.add(r.json()["data"]["metadata"]["conversationId"])
    checks.expect(True, f"creating {len(created)} conversations succeeds")
    expected_total = requests.get(list_url, headers=headers, params={"limit": 1}, timeout=30).json()["pagination"]["total"]

    recorder.case = "fetch_all_conversations"
    start = len(recorder.entries)
    seed.CHATBASE = origin_of(args.base_url)
    conversations = seed.fetch_all_conversations(args.agent_id, args.api_key)
    pages = [e for e in recorder.entries[start:] if e["url"].startswith(list_url)]
    ids = [c["id"] for c in conversations]
    checks.expect(len(pages) >= 2, "the snippet pages more than once", pages=len(pages))
    checks.expect(len(ids) == len(set(ids)), "no conversation comes twice", duplicates=len(ids) - len(set(ids)))
    checks.expect(len(ids) == expected_total, "the snippet gets `total` conversations", got=len(ids), total=expected_total)
    checks.expect(created <= set(ids), "every conversation created is listed", missing=sorted(created - set(ids))[:5])
    return {"conversations": len(ids), "pages": len(pages), "created": len(created)}


def upload_text(seed, args, checks, recorder):
    base = args.base_url.rstrip("/")
    headers = {"Authorization": f"Bearer {args.api_key}"}
    recorder.case = "upload_text_to_chatbase"
    seed.CHATBASE = origin_of(args.base_url)
    text = ("# Returns\n\nItems bought in the Haarlem store can be returned within 45 days "
            "when the seal on the box is unbroken.")
    answer = seed.upload_text_to_chatbase(args.agent_id, args.api_key, text, "Returns")
    checks.expect(answer == {"chatbotId": args.agent_id}, "the snippet is answered {chatbotId}", answer=answer)
    hits = []
    deadline = time.time() + 60
    while time.time() < deadline:
        sources = requests.get(f"{base}/agents/{args.agent_id}/sources", headers=headers, timeout=30).json()
        if sources["data"] and all(s["status"] == "trained" for s in sources["data"]):
            hits = requests.post(f"{base}/agents/{args.agent_id}/search", headers=headers,
                                 json={"query": "how long can I return something from the Haarlem shop?"},
                                 timeout=30).json()["data"]
            if hits:
                break
        time.sleep(0.2)
    checks.expect(bool(hits) and "45 days" in hits[0]["text"], "the uploaded text trains and is found",
                  hits=hits[:1])
    return {"hits": len(hits)}


SITE = {
    "index.html": ("Espresso docs", "Start here. Guides for the machine.", ["descaling.html", "grinding.html"]),
    "descaling.html": ("Descaling", "Descale the boiler of the Fiorenza machine every two months with citric acid.", []),
    "grinding.html": ("Grinding", "Grind the beans so a double shot of the Fiorenza takes twenty-five seconds.", []),
}


def serve_site():
    """A tiny docs site on loopback; returns (server, base URL)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.rsplit("/", 1)[-1] or "index.html"
            if name not in SITE:
                self.send_error(404)
                return
            title, text, links = SITE[name]
            nav = "".join(f'<a href="{l}">{l}</a> ' for l in links)
            body = (f"<html><head><title>{title}</title></head><body><nav>{nav}</nav><main><h1>{title}</h1>"
                    f"<p>{text} This paragraph is long enough to count as the main content of the page.</p>"
                    f"</main></body></html>").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/site/"


def apify(seed, args, checks, recorder):
    base = args.base_url.rstrip("/")
    headers = {"Authorization": f"Bearer {args.api_key}"}
    site, start_url = serve_site()
    try:
        recorder.case = "apify"
        seed.APIFY = origin_of(args.base_url)
        seed.CHATBASE = origin_of(args.base_url)
        run_id = seed.start_crawl(args.api_key, start_url, max_depth=2, max_pages=10)
        checks.expect(bool(run_id), "start_crawl returns a run id", run_id=run_id)
        pages = seed.wait_for_run(run_id, args.api_key)
        urls = sorted(p.get("url", "") for p in pages)
        checks.expect(len(pages) == 3, "wait_for_run returns every page of the site", urls=urls)
        corpus = seed.build_corpus(pages)
        checks.expect("citric acid" in corpus and "twenty-five seconds" in corpus,
                      "build_corpus joins the pages' Markdown", corpus=corpus[:300])
        answer = seed.upload_text_to_chatbase(args.agent_id, args.api_key, corpus, "Crawled docs")
        checks.expect(answer == {"chatbotId": args.agent_id}, "the corpus uploads")
        hits = []
        deadline = time.time() + 60
        while time.time() < deadline and not hits:
            sources = requests.get(f"{base}/agents/{args.agent_id}/sources", headers=headers, timeout=30).json()
            if sources["data"] and all(s["status"] == "trained" for s in sources["data"]):
                hits = requests.post(f"{base}/agents/{args.agent_id}/search", headers=headers,
                                     json={"query": "how often do I descale the Fiorenza?"}, timeout=30).json()["data"]
            time.sleep(0.2)
        checks.expect(bool(hits) and "citric acid" in hits[0]["text"], "the crawled corpus trains and is found",
                      hits=hits[:1])
        return {"pages": len(pages), "hits": len(hits)}
    finally:
        site.shutdown()


def rust_book(seed, args, checks, recorder):
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=args.rust_book)
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        recorder.case = "rust book"
        seed.APIFY = origin_of(args.base_url)
        start_url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        run_id = seed.start_crawl(args.api_key, start_url, max_depth=2, max_pages=40)
        pages = seed.wait_for_run(run_id, args.api_key)
        urls = sorted(p.get("url", "") for p in pages)
        checks.expect(len(pages) == 40, "the Rust Book crawl returns max_pages pages", count=len(pages), urls=urls)
        depths = sorted({p["crawl"]["depth"] for p in pages})
        checks.expect(depths == [0, 1], "chapters are found from the start page", depths=depths)
        modes = {}
        for p in pages:
            modes[p["crawl"].get("mode")] = modes.get(p["crawl"].get("mode"), 0) + 1
        checks.expect(set(modes) <= {"http", "browser"}, "items say which mode produced them", modes=modes)
        return {"pages": len(pages), "modes": modes}
    finally:
        server.shutdown()


def backoff(seed, args, checks, recorder):
    base = args.limited_base_url.rstrip("/")
    headers = {"Authorization": f"Bearer {args.limited_api_key}"}
    recorder.case = "exhaust the rate limit"
    limited = None
    for _ in range(1000):
        r = requests.get(f"{base}/agents/{args.limited_agent_id}/conversations", headers=headers, timeout=30)
        if r.status_code == 429:
            limited = r
            break
    if not checks.expect(limited is not None, "the tight rate limit answers 429"):
        return None
    retry_after = limited.headers.get("Retry-After")
    checks.expect(
        retry_after is not None and retry_after.isdigit(),
        "429 carries Retry-After in whole seconds (the snippet does int() on it)",
        retryAfter=retry_after,
    )

    recorder.case = "chat_with_backoff"
    start = len(recorder.entries)
    seed.CHATBASE = origin_of(args.limited_base_url)
    printed = io.StringIO()
    began = time.monotonic()
    with contextlib.redirect_stdout(printed):
        result = seed.chat_with_backoff(args.limited_agent_id, args.limited_api_key, "Hello after a 429")
    elapsed = time.monotonic() - began
    attempts = [e["status"] for e in recorder.entries[start:]]
    text = "".join(p.get("text", "") for p in result["data"]["parts"] if p.get("type") == "text")
    checks.expect(attempts[:1] == [429], "the snippet's first attempt is rate limited", attempts=attempts)
    checks.expect(
        attempts == [429, 200],
        "after sleeping Retry-After the next attempt succeeds",
        attempts=attempts,
        printed=printed.getvalue(),
    )
    checks.expect("Rate limited. Retrying in" in printed.getvalue(), "the snippet reports its backoff", printed=printed.getvalue())
    checks.expect(text == "Echo: Hello after a 429", "the answer arrives after the backoff", text=text)
    return {"attempts": attempts, "printed": printed.getvalue().strip(), "elapsedSecs": round(elapsed, 2), "retryAfter": retry_after}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="v2 base, e.g. http://127.0.0.1:8080/api/v2")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--agent-id", required=True)
    parser.add_argument("--limited-base-url")
    parser.add_argument("--limited-api-key")
    parser.add_argument("--limited-agent-id")
    parser.add_argument("--record")
    parser.add_argument("--rust-book", help="the Rust Book's HTML directory (rustc --print sysroot)/share/doc/rust/html/book")
    args = parser.parse_args(argv)

    seed = load_seed_snippets()
    checks = Checks()
    report = {"skipped": {}}
    with Recorder(args.record, "python-seed") as recorder:
        sections = [
            ("fetch_all_conversations", pagination),
            ("upload_text_to_chatbase", upload_text),
            ("start_crawl, wait_for_run, build_corpus", apify),
        ]
        if args.rust_book:
            sections.append(("start_crawl on the Rust Book", rust_book))
        else:
            report["skipped"]["start_crawl on the Rust Book"] = "no --rust-book given"
        if args.limited_base_url:
            sections.append(("chat_with_backoff", backoff))
        else:
            report["skipped"]["chat_with_backoff"] = "no --limited-base-url given"
        for name, section in sections:
            try:
                report[name] = section(seed, args, checks, recorder)
            except Exception as error:  # a snippet raising is a failed check, not a crash
                checks.expect(False, f"{name} runs", error=repr(error), trace=traceback.format_exc()[-2000:])
    report["passed"] = [c["check"] for c in checks.passed]
    report["failed"] = checks.failed
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
