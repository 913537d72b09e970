#!/usr/bin/env python3
"""Drives agentbase with Apify's official Python client (`apify-client`, pinned in
requirements.txt), unchanged: only the API URL and the token are set.

Usage:
  python3 compat/apify_clients.py --api-url http://127.0.0.1:PORT --token KEY

A small site is served on loopback (the server must allow private networks) and the
Website Content Crawler is driven end to end, as the client's own docs show it:
- actor("apify/website-content-crawler").call(): start, follow the run's log, wait;
- dataset(...).list_items() with offset/limit/clean/fields/desc, paged to the end,
  and iterate_items(); every page agrees with the whole; flatten; CSV through
  get_items_as_bytes() with and without its byte order mark; XLSX through it (a
  zip whose sheet, read with zipfile and xml.etree, holds the URLs) and XML with
  xml_root/xml_row (parsed with xml.etree);
- run(...).get(), the run's log().get(), its default key-value store's INPUT (the
  input as sent) and OUTPUT (absent, as for this actor on Apify: get_record is None);
- actor("apify~website-content-crawler").start() of a slow crawl, abort(), then
  wait_for_finish(): ABORTED;
- actor.runs().list() and runs().list() (order, status filters), actor.last_run()
  with and without a status, and the last run's dataset, INPUT record and log;
- call(max_items=3, webhooks=[…]): the run writes 3 items and the ad-hoc webhook
  gets its templated payload;
- webhooks().create() (twice, one idempotency key) for every run of the actor: a
  run's end reaches it; webhook(…).dispatches(), webhook_dispatch(…),
  webhook_dispatches(), actor.webhooks(), test(), update(), delete();
- dataset(…).delete() and key_value_store(…).delete(): gone, their run stays.

Prints a JSON report and exits 1 on any failed check."""

import argparse
import http.server
import io
import json
import sys
import threading
import time
import traceback
import xml.etree.ElementTree as ET
import zipfile

from apify_client import ApifyClient

PAGES = 9  # the site: an index linking pages 1..PAGES-1


HOOKS = []  # the bodies the site's /hook was POSTed (a run webhook's receiver)


def serve_site():
    """The docs site, a slow one whose pages take 2 s (for the abort), and /hook."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            HOOKS.append(json.loads(self.rfile.read(length) or b"null"))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            path = self.path.split("?")[0]
            if path.startswith("/slow/"):
                time.sleep(2)
                n = int(path.rsplit("/", 1)[-1] or 0) if path.rsplit("/", 1)[-1].isdigit() else 0
                links = "".join(f'<a href="/slow/{n * 3 + k}">more</a>' for k in (1, 2, 3))
                body = f"<html><head><title>Slow {n}</title></head><body><main><h1>Slow {n}</h1><p>A slow page, long enough to count as main content of a page.</p>{links}</main></body></html>"
            elif path == "/site/" or path.startswith("/site/page"):
                n = 0 if path == "/site/" else int(path.rsplit("page", 1)[-1])
                links = "".join(f'<a href="/site/page{k}">Page {k}</a> ' for k in range(1, PAGES)) if n == 0 else ""
                body = (f"<html><head><title>Page {n}</title></head><body><nav>{links}</nav><main><h1>Page {n}</h1>"
                        f"<p>Page number {n} of the espresso guide. This paragraph is long enough to be the main content.</p>"
                        f"</main></body></html>")
            else:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


SHEET_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def xlsx_rows(data):
    """The first worksheet of an .xlsx file as rows of {column letters: text}, read
    with zipfile and xml.etree only (inline strings and a shared-string table alike)."""
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        names = book.namelist()
        shared = []
        if "xl/sharedStrings.xml" in names:
            table = ET.fromstring(book.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in si.iter(f"{SHEET_NS}t")) for si in table.findall(f"{SHEET_NS}si")]
        sheet = ET.fromstring(book.read(sorted(n for n in names if n.startswith("xl/worksheets/sheet"))[0]))
    rows = []
    for row in sheet.iter(f"{SHEET_NS}row"):
        cells = {}
        for cell in row.findall(f"{SHEET_NS}c"):
            column = "".join(ch for ch in cell.get("r", "") if ch.isalpha())
            if cell.get("t") == "inlineStr":
                cells[column] = "".join(t.text or "" for t in cell.iter(f"{SHEET_NS}t"))
            elif cell.get("t") == "s":
                cells[column] = shared[int(cell.findtext(f"{SHEET_NS}v"))]
            else:
                cells[column] = cell.findtext(f"{SHEET_NS}v")
        rows.append(cells)
    return rows


class Checks:
    def __init__(self):
        self.passed, self.failed = [], []

    def expect(self, ok, what, **detail):
        (self.passed if ok else self.failed).append({"check": what, **({} if ok else detail)})
        return ok


def run(args, checks, report):
    site = serve_site()
    client = ApifyClient(args.token, api_url=args.api_url, max_retries=1)
    me = client.user().get()
    checks.expect(me is not None and bool(me.username), "user().get() answers for the token (how integrations check one)",
                  user=me and me.model_dump(mode="json"))
    run_input = {
        "startUrls": [{"url": f"{site}/site/"}],
        "crawlerType": "cheerio",
        "maxCrawlPages": 50,
        "maxCrawlDepth": 2,
    }
    finished = client.actor("apify/website-content-crawler").call(run_input=run_input)
    checks.expect(finished is not None and finished.status == "SUCCEEDED", "call() ends SUCCEEDED",
                  run=finished and finished.model_dump(mode="json"))
    report["run"] = {"id": finished.id, "status": finished.status, "datasetId": finished.default_dataset_id}

    fetched = client.run(finished.id).get()
    checks.expect(fetched is not None and fetched.id == finished.id and fetched.default_key_value_store_id,
                  "run().get() returns the run with its storages")

    dataset = client.dataset(finished.default_dataset_id)
    everything = dataset.list_items()
    checks.expect(everything.total == PAGES and len(everything.items) == PAGES, "list_items() has every page",
                  total=everything.total, count=len(everything.items))
    urls = sorted(i["url"] for i in everything.items)
    checks.expect(urls == sorted([f"{site}/site/"] + [f"{site}/site/page{k}" for k in range(1, PAGES)]),
                  "the dataset holds the site's pages", urls=urls)

    paged, offset = [], 0
    while True:
        page = dataset.list_items(offset=offset, limit=4, clean=True, fields=["url", "text"])
        checks.expect(page.offset == offset and page.limit == 4 and page.total == PAGES,
                      f"page at {offset} reports offset, limit and total",
                      page={"offset": page.offset, "limit": page.limit, "total": page.total, "count": page.count})
        paged.extend(page.items)
        offset += page.count
        if page.count == 0 or offset >= page.total:
            break
    checks.expect([i["url"] for i in paged] == [i["url"] for i in everything.items],
                  "pages of 4 walk the dataset in order")
    checks.expect(all(set(i) == {"url", "text"} for i in paged), "fields keeps only url and text",
                  keys=sorted({k for i in paged for k in i}))
    desc = dataset.list_items(limit=2, desc=True)
    checks.expect([i["url"] for i in desc.items] == [i["url"] for i in everything.items][::-1][:2] and desc.desc,
                  "desc returns the newest first")
    flat = dataset.list_items(limit=1, flatten=["metadata"], fields=["url", "metadata.title"], skip_empty=True)
    checks.expect(len(flat.items) == 1 and set(flat.items[0]) == {"url", "metadata.title"}
                  and flat.items[0]["metadata.title"], "list_items(flatten=['metadata']) gives metadata.title",
                  items=flat.items)
    csv_bytes = dataset.get_items_as_bytes(item_format="csv", fields=["url"], bom=False, delimiter=";",
                                           skip_header_row=True)
    lines = csv_bytes.decode().splitlines()
    checks.expect(len(lines) == PAGES and not csv_bytes.startswith(b"\xef\xbb\xbf") and lines[0].startswith("http"),
                  "get_items_as_bytes(csv, bom=False, skip_header_row=True)", head=csv_bytes[:200])
    checks.expect(dataset.get_items_as_bytes(item_format="csv", fields=["url"]).startswith(b"\xef\xbb\xbfurl"),
                  "CSV starts with a byte order mark by default, as on Apify")
    xlsx = dataset.get_items_as_bytes(item_format="xlsx", fields=["url", "metadata"])
    rows = xlsx_rows(xlsx)
    url_column = next((k for k, v in (rows[0] if rows else {}).items() if v == "url"), None)
    checks.expect(xlsx.startswith(b"PK") and url_column is not None
                  and sorted(r.get(url_column) for r in rows[1:]) == urls,
                  "get_items_as_bytes(xlsx) is a zip whose sheet holds the URLs under a url column",
                  head=xlsx[:40], rows=rows[:3])
    xml_bytes = dataset.get_items_as_bytes(item_format="xml", xml_root="pages", xml_row="page",
                                           fields=["url", "metadata"])
    try:
        root = ET.fromstring(xml_bytes)
    except ET.ParseError as error:
        root = None
        checks.expect(False, "get_items_as_bytes(xml) parses with xml.etree", error=str(error), head=xml_bytes[:500])
    if root is not None:
        pages = root.findall("page")
        checks.expect(root.tag == "pages" and sorted(p.findtext("url") for p in pages) == urls
                      and all(p.findtext("metadata/title") for p in pages),
                      "get_items_as_bytes(xml, xml_root, xml_row) parses with xml.etree: pages of url and metadata/title",
                      head=xml_bytes[:500])
    iterated = list(dataset.iterate_items())
    checks.expect([i["url"] for i in iterated] == [i["url"] for i in everything.items], "iterate_items() yields every item")
    checks.expect(all(i.get("text") and i.get("metadata", {}).get("title") for i in iterated),
                  "items carry text and metadata.title")

    log = client.run(finished.id).log().get()
    checks.expect(log is not None and "Crawled" in log and "SUCCEEDED" in log, "the run's log tells the crawl",
                  log=(log or "")[:500])
    report["logLines"] = len((log or "").splitlines())

    store = client.run(finished.id).key_value_store()
    record = store.get_record("INPUT")
    checks.expect(record is not None and record["value"] == run_input, "the INPUT record is the input",
                  record=record)
    checks.expect(store.get_record("OUTPUT") is None, "OUTPUT is absent, as for this actor on Apify")
    by_id = client.key_value_store(fetched.default_key_value_store_id).get_record("INPUT")
    checks.expect(by_id is not None and by_id["value"] == run_input, "the store is readable by its id too")

    slow = client.actor("apify~website-content-crawler").start(run_input={
        "startUrls": [{"url": f"{site}/slow/0"}], "maxCrawlPages": 40, "maxConcurrency": 1,
    })
    checks.expect(slow.status in ("READY", "RUNNING"), "start() returns a running run", status=slow.status)
    time.sleep(1.5)
    aborted = client.run(slow.id).abort()
    checks.expect(aborted.status in ("ABORTING", "ABORTED"), "abort() answers ABORTING or ABORTED", status=aborted.status)
    ended = client.run(slow.id).wait_for_finish()
    checks.expect(ended is not None and ended.status == "ABORTED", "wait_for_finish() ends ABORTED",
                  status=ended and ended.status)
    checks.expect(client.run("no-such-run").get() is None, "an unknown run is None")
    report["slow"] = {"id": slow.id, "status": ended and ended.status}

    # The actor's runs, the account's runs, and the last run with its storages.
    actor = client.actor("apify/website-content-crawler")
    # (The workspace may hold other clients' runs too: only this script's are compared.)
    def ours(page):
        return [r.id for r in page.items if r.id in (finished.id, slow.id)]

    newest_first = actor.runs().list(desc=True)
    checks.expect(newest_first.total >= 2 and ours(newest_first) == [slow.id, finished.id],
                  "actor.runs().list(desc=True) lists both runs, newest first",
                  ids=[r.id for r in newest_first.items], total=newest_first.total)
    by_status = client.runs().list(status=["SUCCEEDED", "ABORTED"])
    checks.expect(ours(by_status) == [finished.id, slow.id]
                  and all(r.status in ("SUCCEEDED", "ABORTED") for r in by_status.items),
                  "runs().list(status=[…]) keeps those statuses", ids=[r.id for r in by_status.items])
    succeeded = client.runs().list(status="SUCCEEDED")
    checks.expect(ours(succeeded) == [finished.id] and all(r.status == "SUCCEEDED" for r in succeeded.items),
                  "runs().list(status=SUCCEEDED) keeps the crawl")
    last_any = actor.last_run().get()
    checks.expect(last_any is not None and last_any.id == slow.id, "last_run().get() is the newest run",
                  id=last_any and last_any.id)
    last = actor.last_run(status="SUCCEEDED")
    last_run = last.get()
    checks.expect(last_run is not None and last_run.id == finished.id, "last_run(status=SUCCEEDED).get() is the crawl",
                  id=last_run and last_run.id)
    last_items = last.dataset().list_items()
    checks.expect(last_items.total == PAGES, "last_run(…).dataset().list_items() reads its dataset", total=last_items.total)
    last_input = last.key_value_store().get_record("INPUT")
    checks.expect(last_input is not None and last_input["value"] == run_input,
                  "last_run(…).key_value_store().get_record('INPUT') is its input")
    last_log = last.log().get()
    checks.expect(last_log is not None and "SUCCEEDED" in last_log, "last_run(…).log().get() is its log")
    none_yet = actor.last_run(status="TIMED-OUT").get()
    checks.expect(none_yet is None, "last_run(status=TIMED-OUT).get() is None: no such run")

    # maxItems bounds what a run writes; an ad-hoc webhook hears of its end.
    hook = {"event_types": ["ACTOR.RUN.SUCCEEDED"], "request_url": f"{site}/hook",
            "payload_template": '{"run": {{resource.id}}, "items": {{resource.stats.itemCount}}}'}
    bounded = actor.call(run_input=run_input, max_items=3, logger=None, webhooks=[hook])
    bounded_items = client.dataset(bounded.default_dataset_id).list_items()
    checks.expect(bounded.status == "SUCCEEDED" and bounded_items.total == 3, "call(max_items=3) writes 3 items",
                  status=bounded.status, total=bounded_items.total)
    for _ in range(100):
        if HOOKS:
            break
        time.sleep(0.1)
    checks.expect(HOOKS == [{"run": bounded.id, "items": 3}], "call(webhooks=[…]): the webhook gets its payload",
                  hooks=HOOKS)

    persistent_webhooks(client, actor, site, run_input, checks)


def wait_for_hooks(predicate):
    for _ in range(100):
        if predicate():
            return
        time.sleep(0.1)


def persistent_webhooks(client, actor, site, run_input, checks):
    """webhooks().create() for every run of the actor: a run's end reaches it, its
    dispatches are listed, test() sends at once, update() and delete(); then a
    run's dataset and key-value store deleted alone."""
    definition = {"event_types": ["ACTOR.RUN.SUCCEEDED"], "request_url": f"{site}/hook",
                  "payload_template": '{"persistent": {{resource.id}}}',
                  "actor_id": "apify/website-content-crawler", "idempotency_key": "compat-persistent"}
    webhook = client.webhooks().create(**definition)
    again = client.webhooks().create(**definition)
    checks.expect(again.id == webhook.id and webhook.condition.actor_id == "apify/website-content-crawler",
                  "webhooks().create() twice with one idempotency_key is one webhook", first=webhook.id, again=again.id)
    HOOKS.clear()
    hooked = actor.call(run_input=run_input, max_items=1, logger=None)
    wait_for_hooks(lambda: {"persistent": hooked.id} in HOOKS)
    checks.expect({"persistent": hooked.id} in HOOKS, "a persistent webhook hears of the actor's run", hooks=HOOKS)
    dispatches = client.webhook(webhook.id).dispatches().list()
    checks.expect(dispatches.total == 1 and dispatches.items[0].status == "SUCCEEDED"
                  and dispatches.items[0].event_data.actor_run_id == hooked.id,
                  "webhook(…).dispatches().list() has the run's dispatch", total=dispatches.total)
    one = client.webhook_dispatch(dispatches.items[0].id).get() if dispatches.items else None
    checks.expect(one is not None and one.webhook_id == webhook.id, "webhook_dispatch(…).get() reads it")
    everything = client.webhook_dispatches().list()
    checks.expect(everything.total >= 2, "webhook_dispatches().list() has the ad-hoc and persistent ones",
                  total=everything.total)
    listed = [w.id for w in client.webhooks().list().items]
    of_actor = [w.id for w in actor.webhooks().list().items]
    checks.expect(webhook.id in listed and webhook.id in of_actor, "webhooks().list() and actor.webhooks().list()",
                  listed=listed, of_actor=of_actor)
    tested = client.webhook(webhook.id).test()
    checks.expect(tested.status == "SUCCEEDED" and tested.event_type == "TEST", "webhook(…).test() sends at once",
                  status=tested.status)
    updated = client.webhook(webhook.id).update(description="changed", do_not_retry=True)
    checks.expect(updated.description == "changed" and updated.do_not_retry
                  and updated.condition.actor_id == "apify/website-content-crawler",
                  "webhook(…).update() changes what it is given and keeps the condition")
    client.webhook(webhook.id).delete()
    checks.expect(client.webhook(webhook.id).get() is None, "webhook(…).delete(): get() is None")

    unnamed = [d.id for d in client.datasets().list(unnamed=True).items]
    checks.expect(hooked.default_dataset_id in unnamed, "datasets().list(unnamed=True) has the run's dataset")
    client.dataset(hooked.default_dataset_id).delete()
    client.key_value_store(hooked.default_key_value_store_id).delete()
    checks.expect(client.dataset(hooked.default_dataset_id).get() is None
                  and client.key_value_store(hooked.default_key_value_store_id).get() is None
                  and client.run(hooked.id).get() is not None,
                  "dataset(…).delete() and key_value_store(…).delete(): gone, the run stays")
    unnamed = [d.id for d in client.datasets().list(unnamed=True).items]
    checks.expect(hooked.default_dataset_id not in unnamed, "a deleted dataset is no longer listed")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True, help="the server's root, e.g. http://127.0.0.1:8080")
    parser.add_argument("--token", required=True)
    args = parser.parse_args(argv)
    checks, report = Checks(), {}
    try:
        run(args, checks, report)
    except Exception as error:  # a client raising is a failed check, not a crash
        checks.expect(False, "the client runs", error=repr(error), trace=traceback.format_exc()[-3000:])
    report["passed"] = [c["check"] for c in checks.passed]
    report["failed"] = checks.failed
    json.dump(report, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
