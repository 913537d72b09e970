"""Chaos: `kill -9` of the real server during concurrent chat turns, training and an
Apify crawl run, restart, and check that nothing acknowledged was lost and nothing
was left running.

Acknowledged means: a chat turn answered 200 with JSON, or a stream that reached its
`finish` chunk; a source answered 201 (and a delete answered 2xx); a dataset item the
API returned. After each restart every acknowledgement of that cycle is checked
(messages with their exact text, sources present, deleted sources still gone,
dataset items at the same offsets); after the last restart all of them are checked
again, then the load stops and every training job and crawl run must reach a
terminal state within --bound seconds.

    python3 chaos.py --binary target/release/agentbase [--cycles 20] [--seed 1]
        [--database postgres://...] [--json out.json]

Exit status 0 only with 0 lost, 0 stuck and no server death we did not cause.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import requests

import docs
from harness import Api, Server, Site, log, loadavg

TERMINAL_JOB = {"succeeded", "failed"}
TERMINAL_RUN = {"SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED"}


@dataclass
class Cycle:
    n: int
    uptime: float = 0.0
    restart_secs: float = 0.0
    chat_json: int = 0
    chat_stream: int = 0
    chat_doubt: int = 0
    chat_refused: dict = field(default_factory=dict)
    sources: int = 0
    deletes: int = 0
    items: int = 0
    runs_started: int = 0
    lost_messages: int = 0
    lost_sources: int = 0
    resurrected: int = 0
    lost_items: int = 0
    jobs_in_flight: int = 0
    runs_in_flight: int = 0
    convs_in_flight: int = 0
    convs_busy_after: int = 0
    # The slowest of the jobs and runs in flight at this cycle's kill to end,
    # in seconds after the kill.
    orphans_ended_within: float | str | None = None
    unexpected_death: str | None = None
    notes: list = field(default_factory=list)


class Chaos:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.up = threading.Event()
        self.stop = threading.Event()
        self.cycle = 0
        self.cycles: list[Cycle] = [Cycle(0)]
        # acknowledgements
        self.messages: list[dict] = []  # {cycle, agent, conv, user, answer}
        self.sources: list[dict] = []  # {cycle, agent, id, name}
        self.deleted: list[dict] = []  # {cycle, agent, id}
        self.runs: dict[str, dict] = {}  # id -> {dataset, items: [url], cycle}
        # in flight (cleared when acknowledged or failed)
        self.inflight_convs: dict[int, tuple[str, str]] = {}  # worker -> (agent, conv)
        # observed
        self.jobs: dict[str, dict] = {}  # id -> {agent, status, first, end}
        self.run_status: dict[str, dict] = {}  # id -> {status, end}
        self.errors: list[str] = []
        self.kills: list[tuple[Cycle, float, tuple[list, list]]] = []
        self.site = Site(pages=4000, fanout=4, delay_ms=args.page_delay_ms)
        self.tmp = tempfile.mkdtemp(prefix="agentbase-chaos-")
        env = {"AGENTBASE__CRAWLER__MAX_PAGES": str(args.link_pages), "AGENTBASE__LOG__LEVEL": args.log_level,
               "AGENTBASE__KNOWLEDGE__EMBEDDER": args.embedder}
        if args.database:
            env["AGENTBASE__DATABASE__URL"] = args.database
        self.server = Server(args.binary, self.tmp + "/data", env)

    # ---- bookkeeping -------------------------------------------------------------

    def cur(self) -> Cycle:
        return self.cycles[-1]

    def note_error(self, what: str) -> None:
        with self.lock:
            if len(self.errors) < 200:
                self.errors.append(f"cycle {self.cycle}: {what}")

    def api(self, timeout: float = 30.0) -> Api:
        return Api(self.server, self.key, timeout)

    # ---- setup -----------------------------------------------------------------------

    def setup(self) -> None:
        init = self.server.init()
        self.key = init["apiKey"]
        secs = self.server.start()
        log(f"server up in {secs:.2f}s on {self.server.url}, data dir {self.server.data_dir}")
        a = self.api()
        self.chat_agents = [a.ok("POST", "/api/v2/agents", 201, json={"name": f"chat {i}"})["id"]
                            for i in range(2)]
        self.train_agents = [a.ok("POST", "/api/v2/agents", 201, json={"name": "train 0"})["id"]]
        # A first crawl and a first training before the load, to know the path works.
        r = a.ok("POST", f"/api/v2/agents/{self.train_agents[0]}/sources", 201,
                 json={"type": "text", "name": "warm-up", "content": docs_text(0, 200)})
        self.sources.append({"cycle": 0, "agent": self.train_agents[0], "id": r["id"], "name": "warm-up"})
        self.up.set()

    # ---- workers ----------------------------------------------------------------------

    def wait_up(self) -> bool:
        while not self.stop.is_set():
            if self.up.wait(0.5):
                return True
        return False

    def chat_worker(self, w: int) -> None:
        rng = random.Random(self.args.seed * 1000 + w)
        api = self.api()
        mine: list[tuple[str, str, int]] = []  # (agent, conv, turns)
        i = 0
        while self.wait_up():
            i += 1
            agent = rng.choice(self.chat_agents)
            body: dict = {}
            conv = None
            if mine and rng.random() < 0.4:
                k = rng.randrange(len(mine))
                agent, conv, turns = mine[k]
                body["conversationId"] = conv
            text = f"m{self.cycle}-{w}-{i} {' '.join(rng.sample(docs.WORDS_SMALL, 3))}"
            delay = rng.choice([0, 0, 5, 20])
            body["message"] = f"{text} [[delay:{delay}]]" if delay else text
            stream = rng.random() < 0.5
            if not stream:
                body["stream"] = False
            cyc = self.cur()
            with self.lock:
                self.inflight_convs[w] = (agent, conv)
            try:
                if stream:
                    how, info = api.chat_stream(agent, body)
                    conv = info.get("conversationId") or conv
                    with self.lock:
                        self.inflight_convs[w] = (agent, conv)
                    if how == "finish" and info["text"] == f"Echo: {text}" and conv:
                        self.ack_message(cyc, agent, conv, body["message"], info["text"], "stream")
                    elif how == "finish":
                        self.note_error(f"stream finished with unexpected text {info['text']!r}")
                    elif how.startswith("status"):
                        self.refused(cyc, info)
                    else:
                        with self.lock:
                            cyc.chat_doubt += 1
                else:
                    r = api.req("POST", f"/api/v2/agents/{agent}/chat", json=body)
                    if r.status_code == 200:
                        d = r.json()["data"]
                        conv = d["metadata"]["conversationId"]
                        answer = "".join(p.get("text", "") for p in d["parts"] if p.get("type") == "text")
                        if answer != f"Echo: {text}":
                            self.note_error(f"unexpected JSON answer {answer!r}")
                        else:
                            self.ack_message(cyc, agent, conv, body["message"], answer, "json")
                    else:
                        self.refused(cyc, {"status": r.status_code, "body": r.text[:300]})
                if conv and "conversationId" not in body:
                    mine.append((agent, conv, 1))
            except (requests.RequestException, ValueError):
                with self.lock:
                    cyc.chat_doubt += 1
            finally:
                with self.lock:
                    self.inflight_convs.pop(w, None)
            if len(mine) > 50:
                mine.pop(0)

    def refused(self, cyc: Cycle, info: dict) -> None:
        code = str(info.get("status"))
        try:
            code += " " + json.loads(info.get("body", "{}"))["error"]["code"]
        except (ValueError, KeyError, TypeError):
            pass
        with self.lock:
            cyc.chat_refused[code] = cyc.chat_refused.get(code, 0) + 1
        if not code.startswith("409"):
            self.note_error(f"chat refused: {info}")

    def ack_message(self, cyc, agent, conv, user, answer, kind) -> None:
        with self.lock:
            self.messages.append({"cycle": cyc.n, "agent": agent, "conv": conv, "user": user,
                                  "answer": answer})
            if kind == "json":
                cyc.chat_json += 1
            else:
                cyc.chat_stream += 1

    def training_worker(self) -> None:
        rng = random.Random(self.args.seed * 1000 + 99)
        api = self.api(timeout=60)
        n = 0
        while self.wait_up():
            n += 1
            with self.lock:
                agent = self.train_agents[-1]
            cyc = self.cur()
            kind = rng.choices(["text", "file", "link", "delete"], [6, 4, 1, 2])[0]
            name = f"s{self.cycle}-{n}"
            try:
                if kind == "delete":
                    mine = [s for s in self.sources if s["agent"] == agent and not s.get("deleted")]
                    if not mine:
                        continue
                    s = rng.choice(mine)
                    r = api.req("DELETE", f"/api/v2/agents/{agent}/sources/{s['id']}")
                    if r.status_code in (200, 204):
                        with self.lock:
                            s["deleted"] = True
                            self.deleted.append({"cycle": cyc.n, "agent": agent, "id": s["id"]})
                            cyc.deletes += 1
                    else:
                        self.note_error(f"delete source: {r.status_code} {r.text[:200]}")
                    continue
                if kind == "text":
                    r = api.req("POST", f"/api/v2/agents/{agent}/sources",
                                json={"type": "text", "name": name,
                                      "content": docs_text(n, rng.randrange(100, 400))})
                elif kind == "link":
                    r = api.req("POST", f"/api/v2/agents/{agent}/sources",
                                json={"type": "link", "url": self.site.section(),
                                      "linkType": "crawl"})
                else:
                    fmt = rng.choice(["txt", "md", "html", "pdf", "docx"])
                    body = docs_text(n, rng.randrange(80, 300))
                    data = {"txt": lambda: body.encode(),
                            "md": lambda: f"# {name}\n\n{body}\n".encode(),
                            "html": lambda: f"<html><body><h1>{name}</h1><p>{body}</p></body></html>".encode(),
                            "pdf": lambda: docs.text_pdf(body[:400]),
                            "docx": lambda: docs.text_docx([name, body])}[fmt]()
                    r = api.req("POST", f"/api/v2/agents/{agent}/sources",
                                files={"file": (f"{name}.{fmt}", data)}, data={"name": name})
                if r.status_code == 201:
                    with self.lock:
                        self.sources.append({"cycle": cyc.n, "agent": agent, "id": r.json()["id"],
                                             "name": name, "kind": kind})
                        cyc.sources += 1
                        if sum(1 for s in self.sources if s["agent"] == agent) >= 80:
                            # The training-jobs list shows an agent's newest 100 jobs:
                            # a fresh agent keeps every job observable.
                            self.train_agents.append(api.ok("POST", "/api/v2/agents", 201,
                                                            json={"name": f"train {len(self.train_agents)}"})["id"])
                else:
                    self.note_error(f"create {kind} source: {r.status_code} {r.text[:200]}")
            except (requests.RequestException, ValueError, RuntimeError):
                pass
            time.sleep(rng.uniform(*self.args.train_gap))

    def crawl_worker(self) -> None:
        rng = random.Random(self.args.seed * 1000 + 77)
        api = self.api()
        while self.wait_up():
            cyc = self.cur()
            try:
                r = api.req("POST", "/v2/acts/apify~website-content-crawler/runs",
                            json={"startUrls": [{"url": self.site.section()}],
                                  "maxCrawlPages": self.args.run_pages, "maxCrawlDepth": 20})
                if r.status_code != 201:
                    self.note_error(f"start run: {r.status_code} {r.text[:200]}")
                    time.sleep(1)
                    continue
                d = r.json()["data"]
                run = {"id": d["id"], "dataset": d["defaultDatasetId"], "items": [], "cycle": cyc.n}
                with self.lock:
                    self.runs[run["id"]] = run
                    cyc.runs_started += 1
                while not self.stop.is_set():
                    r = api.req("GET", f"/v2/datasets/{run['dataset']}/items",
                                params={"offset": len(run["items"]), "limit": 1000, "fields": "url"})
                    r.raise_for_status()
                    got = [i["url"] for i in r.json()]
                    with self.lock:
                        run["items"].extend((self.cycle, u) for u in got)
                        self.cur().items += len(got)
                    st = api.ok("GET", f"/v2/actor-runs/{run['id']}")["data"]["status"]
                    if st in TERMINAL_RUN:
                        break
                    time.sleep(0.3)
            except (requests.RequestException, ValueError, RuntimeError):
                # The server went away: the run is left to the monitor; a new one
                # starts once it is back.
                pass

    def monitor(self) -> None:
        """Watches every training job and crawl run until it ends, with the time."""
        api = self.api(timeout=10)
        while not self.stop.is_set() or not self.all_ended():
            if not self.up.wait(0.5):
                continue
            try:
                self.observe(api)
            except (requests.RequestException, ValueError, RuntimeError):
                pass
            time.sleep(0.5)
            if self.stop.is_set() and time.monotonic() > self.deadline:
                return

    def observe(self, api: Api) -> None:
        now = time.monotonic()
        with self.lock:
            agents = list(self.train_agents)
            runs = [r for r in self.runs if self.run_status.get(r, {}).get("end") is None]
        for agent in agents:
            listed = api.ok("GET", f"/api/v2/agents/{agent}/training-jobs")["data"]
            with self.lock:
                # A deleted source's jobs go with it: gone from the list, not stuck.
                ids = {j["id"] for j in listed}
                deleted = {d["id"] for d in self.deleted}
                for k, rec in self.jobs.items():
                    if rec["agent"] == agent and rec["end"] is None and k not in ids:
                        rec["end"] = now
                        if rec.get("source") in deleted:
                            rec["status"] = "deleted with its source"
                        else:
                            rec["status"] = "vanished"
                            self.errors.append(f"job {k} left the list but its source was not deleted")
            for j in listed:
                with self.lock:
                    rec = self.jobs.setdefault(j["id"], {"agent": agent, "first": now, "end": None})
                    rec.update(status=j["status"], error=j.get("error"), source=j["sourceId"],
                               stage=j.get("stage"), done=j.get("done"), total=j.get("total"),
                               updated=j.get("updatedAt"))
                    if j["status"] in TERMINAL_JOB and rec["end"] is None:
                        rec["end"] = now
        for rid in runs:
            d = api.ok("GET", f"/v2/actor-runs/{rid}")["data"]
            with self.lock:
                rec = self.run_status.setdefault(rid, {"end": None})
                rec["status"] = d["status"]
                rec["message"] = d.get("statusMessage")
                if d["status"] in TERMINAL_RUN and rec["end"] is None:
                    rec["end"] = now

    def all_ended(self) -> bool:
        with self.lock:
            return (all(j["end"] is not None for j in self.jobs.values())
                    and all(self.run_status.get(r, {}).get("end") is not None for r in self.runs))

    # ---- checks -------------------------------------------------------------------------

    def verify(self, cycles: set[int], cyc: Cycle) -> None:
        """Checks every acknowledgement made in `cycles`; counts into `cyc`."""
        api = self.api()
        with self.lock:
            msgs = [m for m in self.messages if m["cycle"] in cycles]
            srcs = [s for s in self.sources if s["cycle"] in cycles]
            dels = [d for d in self.deleted if d["cycle"] in cycles]
            runs = [r for r in self.runs.values()]
        by_conv: dict[tuple, list] = {}
        for m in msgs:
            by_conv.setdefault((m["agent"], m["conv"]), []).append(m)
        for (agent, conv), ms in by_conv.items():
            stored = conversation_texts(api, agent, conv)
            for m in ms:
                if not has_turn(stored, m["user"], m["answer"]):
                    cyc.lost_messages += 1
                    self.note_error(f"lost message {m} (conversation has {len(stored)} messages)")
        deleted_ids = {d["id"] for d in self.deleted}
        for s in srcs:
            r = api.req("GET", f"/api/v2/agents/{s['agent']}/sources/{s['id']}")
            if s["id"] in deleted_ids:
                continue  # checked below, as a delete
            if r.status_code != 200:
                cyc.lost_sources += 1
                self.note_error(f"lost source {s}: {r.status_code}")
        for d in dels:
            r = api.req("GET", f"/api/v2/agents/{d['agent']}/sources/{d['id']}")
            if r.status_code != 404:
                cyc.resurrected += 1
                self.note_error(f"deleted source back {d}: {r.status_code}")
        for run in runs:
            want = [(i, u) for i, (c, u) in enumerate(run["items"]) if c in cycles]
            if not want:
                continue
            r = api.req("GET", f"/v2/datasets/{run['dataset']}/items",
                        params={"offset": 0, "limit": len(run["items"]) + 10, "fields": "url"})
            have = [i["url"] for i in r.json()] if r.status_code == 200 else []
            for i, u in want:
                if i >= len(have) or have[i] != u:
                    cyc.lost_items += 1
                    self.note_error(f"lost item {i} {u} of run {run['id']}")

    def probe_busy(self, convs: list[tuple[str, str]], cyc: Cycle) -> None:
        """A turn on each conversation that had one in flight at the kill: a 409 means
        the dead process's turn lease still holds it."""
        api = self.api()
        for agent, conv in convs:
            r = api.req("POST", f"/api/v2/agents/{agent}/chat",
                        json={"message": "after the crash", "conversationId": conv, "stream": False})
            if r.status_code == 409:
                cyc.convs_busy_after += 1
            elif r.status_code != 200:
                self.note_error(f"probe of {conv}: {r.status_code} {r.text[:200]}")

    # ---- the run --------------------------------------------------------------------------

    def run(self) -> dict:
        self.setup()
        self.deadline = float("inf")
        threads = [threading.Thread(target=self.chat_worker, args=(w,), daemon=True)
                   for w in range(self.args.chat_workers)]
        threads += [threading.Thread(target=self.training_worker, daemon=True),
                    threading.Thread(target=self.crawl_worker, daemon=True),
                    threading.Thread(target=self.monitor, daemon=True)]
        for t in threads:
            t.start()
        with self.lock:
            self.cycle = 1
            self.cycles.append(Cycle(1))
        for n in range(1, self.args.cycles + 1):
            cyc = self.cur()
            uptime = self.rng.uniform(self.args.min_up, self.args.max_up)
            t0 = time.monotonic()
            while time.monotonic() - t0 < uptime:
                if not self.server.alive():
                    cyc.unexpected_death = self.server.exit_description()
                    self.note_error(f"server died by itself ({cyc.unexpected_death}):\n{self.server.log_tail()}")
                    break
                time.sleep(0.05)
            cyc.uptime = time.monotonic() - t0
            with self.lock:
                now = time.monotonic()
                cyc.jobs_in_flight = sum(1 for j in self.jobs.values() if j["end"] is None)
                cyc.runs_in_flight = sum(1 for r in self.runs
                                         if self.run_status.get(r, {}).get("end") is None)
                busy = [c for c in self.inflight_convs.values() if c[1]]
                orphans = ([j for j, rec in self.jobs.items() if rec["end"] is None],
                           [r for r in self.runs if self.run_status.get(r, {}).get("end") is None])
            cyc.convs_in_flight = len(busy)
            self.up.clear()
            if self.server.alive():
                self.server.kill9()
            self.kills.append((cyc, time.monotonic(), orphans))
            cyc.restart_secs = self.server.start()
            # What is acknowledged from here on belongs to the next cycle, so this
            # cycle's set is complete before it is checked.
            with self.lock:
                self.cycle = n + 1
                self.cycles.append(Cycle(n + 1))
            self.up.set()
            self.verify({0, 1} if n == 1 else {n}, cyc)
            self.probe_busy(busy, cyc)
            log(f"cycle {n:2d}: up {cyc.uptime:4.1f}s, restart {cyc.restart_secs:.2f}s, "
                f"chat {cyc.chat_json}+{cyc.chat_stream} acked ({cyc.chat_doubt} in doubt), "
                f"sources {cyc.sources}+{cyc.deletes} deleted, items {cyc.items}, "
                f"in flight at kill: jobs {cyc.jobs_in_flight} runs {cyc.runs_in_flight} "
                f"convs {cyc.convs_in_flight} (busy after {cyc.convs_busy_after}); "
                f"lost {cyc.lost_messages}/{cyc.lost_sources}/{cyc.lost_items}, back {cyc.resurrected}")
        # The load stops; everything acknowledged is checked once more and every job
        # and run must end within the bound.
        last_restart = time.monotonic()
        self.stop.set()
        self.deadline = last_restart + self.args.bound
        for t in threads[:-1]:
            t.join(timeout=60)
        final = Cycle(-1)
        self.verify(set(range(0, self.args.cycles + 2)), final)
        while time.monotonic() < self.deadline and not self.all_ended():
            try:
                self.observe(self.api(timeout=10))
            except (requests.RequestException, ValueError, RuntimeError):
                pass
            time.sleep(1)
        settled = time.monotonic() - last_restart
        threads[-1].join(timeout=5)
        # With every job ended, every source that is still there has landed or failed.
        api = self.api()
        self.source_states: dict[str, int] = {}
        for src in self.sources:
            if src.get("deleted"):
                continue
            r = api.req("GET", f"/api/v2/agents/{src['agent']}/sources/{src['id']}")
            st = r.json().get("status", "?") if r.status_code == 200 else str(r.status_code)
            self.source_states[st] = self.source_states.get(st, 0) + 1
        return self.report(final, settled)

    def report(self, final: Cycle, settled: float) -> dict:
        with self.lock:
            stuck_jobs = [(k, j) for k, j in self.jobs.items() if j["end"] is None]
            stuck_runs = [r for r in self.runs if self.run_status.get(r, {}).get("end") is None]
            job_ends: dict[str, int] = {}
            for j in self.jobs.values():
                job_ends[j.get("status", "?")] = job_ends.get(j.get("status", "?"), 0) + 1
            run_ends: dict[str, int] = {}
            for r in self.runs:
                s = self.run_status.get(r, {}).get("status", "?")
                run_ends[s] = run_ends.get(s, 0) + 1
            job_errors: dict[str, int] = {}
            for j in self.jobs.values():
                if j.get("status") == "failed":
                    e = (j.get("error") or "")[:80]
                    job_errors[e] = job_errors.get(e, 0) + 1
        kinds = {s["id"]: s.get("kind", "text") for s in self.sources}
        with self.lock:
            for cyc, at, (jobs, runs) in self.kills:
                ends = [self.jobs[j]["end"] for j in jobs] + [self.run_status.get(r, {}).get("end") for r in runs]
                if not ends:
                    cyc.orphans_ended_within = "none in flight"
                elif all(e is not None for e in ends):
                    cyc.orphans_ended_within = round(max(ends) - at, 1)
                else:
                    cyc.orphans_ended_within = "NOT ENDED"
        # Cycle N+1 is the load after the last restart: only the final check covers it.
        cycles = self.cycles[1:-1]
        out = {
            "seed": self.args.seed,
            "database": "postgresql" if self.args.database else "sqlite",
            "embedder": self.args.embedder,
            "cycles": [c.__dict__ for c in cycles],
            "final_check": {"lost_messages": final.lost_messages, "lost_sources": final.lost_sources,
                            "lost_items": final.lost_items, "resurrected": final.resurrected},
            "acknowledged": {"messages": len(self.messages), "sources": len(self.sources),
                             "deletes": len(self.deleted),
                             "items": sum(len(r["items"]) for r in self.runs.values()),
                             "runs": len(self.runs)},
            "jobs": {"total": len(self.jobs), "ends": job_ends, "failed_because": job_errors,
                     "stuck": len(stuck_jobs),
                     "stuck_detail": [dict(j, id=k, kind=kinds.get(j.get("source"))) for k, j in stuck_jobs]},
            "runs": {"total": len(self.runs), "ends": run_ends, "stuck": len(stuck_runs)},
            "bound_secs": self.args.bound,
            "all_ended_after_secs": round(settled, 1) if not stuck_jobs and not stuck_runs else None,
            "unexpected_deaths": [c.n for c in cycles if c.unexpected_death],
            "errors": self.errors[:50],
            "lost": sum(c.lost_messages + c.lost_sources + c.lost_items + c.resurrected for c in cycles)
            + final.lost_messages + final.lost_sources + final.lost_items + final.resurrected,
        }
        out["sources_at_end"] = self.source_states
        # A source still untrained after every job ended was left behind.
        out["stuck"] = len(stuck_jobs) + len(stuck_runs) + self.source_states.get("untrained", 0)
        return out


def docs_text(n: int, words: int) -> str:
    rng = random.Random(n)
    return " ".join(rng.choice(docs.WORDS_SMALL) for _ in range(words)) + f" (document {n})."


def conversation_texts(api: Api, agent: str, conv: str) -> list[tuple[str, str]]:
    """(role, text) of every message of the conversation, oldest first."""
    out: list[tuple[str, str]] = []
    cursor = None
    while True:
        params = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        r = api.req("GET", f"/api/v2/agents/{agent}/conversations/{conv}/messages", params=params)
        if r.status_code != 200:
            return out
        body = r.json()
        for m in body["data"]:
            text = "".join(p.get("text", "") for p in m.get("parts", []) if p.get("type") == "text")
            out.append((m["role"], text))
        cursor = (body.get("pagination") or {}).get("next") or (body.get("pagination") or {}).get("cursor")
        if not cursor or not (body.get("pagination") or {}).get("hasMore", False):
            return out


def has_turn(stored: list[tuple[str, str]], user: str, answer: str) -> bool:
    for i, (role, text) in enumerate(stored):
        if role == "user" and text == user:
            return any(r == "assistant" and t == answer for r, t in stored[i + 1:i + 3])
    return False


def markdown(res: dict) -> str:
    lines = ["| cycle | up s | restart s | chat acked (json+stream) | in doubt | sources acked | deletes | "
             "items acked | jobs / runs / turns in flight at kill | busy after | lost msgs | lost sources | "
             "lost items | deleted back | orphans ended within s |", "|" + "---|" * 15]
    for c in res["cycles"]:
        lines.append(f"| {c['n']} | {c['uptime']:.1f} | {c['restart_secs']:.2f} | {c['chat_json']}+{c['chat_stream']} | "
                     f"{c['chat_doubt']} | {c['sources']} | {c['deletes']} | {c['items']} | "
                     f"{c['jobs_in_flight']} / {c['runs_in_flight']} / {c['convs_in_flight']} | {c['convs_busy_after']} | "
                     f"{c['lost_messages']} | {c['lost_sources']} | {c['lost_items']} | {c['resurrected']} | "
                     f"{c['orphans_ended_within']} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--cycles", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--min-up", type=float, default=4.0, help="least seconds of load before a kill")
    p.add_argument("--max-up", type=float, default=10.0)
    p.add_argument("--chat-workers", type=int, default=4)
    p.add_argument("--train-gap", type=float, nargs=2, default=[1.0, 4.0],
                   help="seconds between two source writes (uniform)")
    p.add_argument("--run-pages", type=int, default=300, help="maxCrawlPages of each crawl run")
    p.add_argument("--link-pages", type=int, default=8, help="crawler.max_pages (link sources)")
    p.add_argument("--page-delay-ms", type=int, default=30)
    p.add_argument("--embedder", default="local", help="knowledge.embedder: local or none")
    p.add_argument("--database", default="", help="a PostgreSQL URL (default: SQLite in the data dir)")
    p.add_argument("--bound", type=float, default=300.0,
                   help="seconds after the last restart by which every job and run must have ended")
    p.add_argument("--log-level", default="warn", help="the server's log.level (its log is in the data dir)")
    p.add_argument("--json", default="")
    p.add_argument("--keep", action="store_true", help="keep the data dir")
    args = p.parse_args()
    log(f"load average before: {loadavg()}")
    chaos = Chaos(args)
    try:
        res = chaos.run()
    finally:
        chaos.server.stop()
        if not args.keep:
            shutil.rmtree(chaos.tmp, ignore_errors=True)
        else:
            log(f"data dir kept: {chaos.tmp}")
    res["loadavg_after"] = loadavg()
    log(f"load average after: {res['loadavg_after']}")
    print(markdown(res))
    summary = {k: v for k, v in res.items() if k not in ("cycles", "errors")}
    print(json.dumps(summary, indent=1))
    for e in res["errors"][:20]:
        print("  !", e[:500])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    ok = res["lost"] == 0 and res["stuck"] == 0 and not res["unexpected_deaths"]
    print(f"chaos: {'PASS' if ok else 'FAIL'}: {res['lost']} lost, {res['stuck']} stuck, "
          f"{len(res['unexpected_deaths'])} deaths not ours")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
