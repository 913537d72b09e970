"""Soak: mixed load for a long while with hostile requests mixed in, against the real
server. Phases:

1. the hostile probe: every case of hostile.py once, alone, with a health check
   after it; a dead server is a finding (the case, how the process ended, the log's
   tail) and is restarted;
2. unloaded: an authenticated GET (/api/v2/agents) at --probe-rate for --quiet
   seconds, nothing else running;
3. loaded: the mix (chat JSON and stream, listings, widget chat on a public agent,
   training with old sources deleted so the live set stays bounded, one crawl run
   after another, hostile requests, slow clients) for --duration seconds with the
   same GET probe beside it; the server's RSS and CPU time are sampled every
   --rss-every seconds.

The probe is `agentbase-bench-load` (Rust, its own process) so the Python load does
not sit between the probe and its clock.

Targets (issue 12): no 5xx, no server death, RSS flat after warm-up, the probe's p99
under load within 2x of unloaded.

The loaded phase is loaded on purpose and is not judged by the load average; the
unloaded baseline is (bench/steal.py's rule, as every benchmark): it is INVALID when
the 1-minute load average before or after it is above --max-load (MAX_LOAD, 2.5) or the
CPU time the hypervisor stole meanwhile above --max-steal (MAX_STEAL, 0.02), and then
the 2x comparison is not reported as a result.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests

import docs
import hostile
import schedtrace
from harness import Api, Server, Site, log, loadavg, percentile

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, BENCH)
from steal import cpu_line, described, judged, load1  # noqa: E402  (bench/steal.py: the rule every bench script shares)


class Soak:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.up = threading.Event()
        self.counts: dict[str, dict[str, int]] = {}
        self.deaths: list[dict] = []
        self.current_hostile: dict[int, str] = {}
        self.hostile_outcomes: dict[str, dict[str, int]] = {}
        # Heavy hostile cases as they ran: (seconds into the load, case, outcome, seconds
        # taken), so the per-minute table can show what fell into a slow minute.
        self.heavy_runs: list[tuple[float, str, str, float]] = []
        self.load_t0 = time.monotonic()
        # (seconds into the load, VmRSS KiB, CPU seconds, RssAnon KiB, RssFile KiB)
        self.rss: list[tuple[float, int, float, int, int]] = []
        # (seconds, allocated, active, resident, SQLite) bytes from the server's /metrics.
        self.heap: list[tuple[float, float, float, float, float]] = []
        self.slow: dict[str, int] = {"opened": 0, "closed_by_server": 0, "answered": 0}
        self.site = Site(pages=4000, fanout=4, delay_ms=args.page_delay_ms)
        self.tmp = tempfile.mkdtemp(prefix="agentbase-soak-")
        env = {"AGENTBASE__SERVER__METRICS": "true", "AGENTBASE__CRAWLER__MAX_PAGES": "30", "AGENTBASE__KNOWLEDGE__EMBEDDER": args.embedder}
        if args.database:
            env["AGENTBASE__DATABASE__URL"] = args.database
        self.server = Server(args.binary, self.tmp + "/data", env)

    # ---- setup ------------------------------------------------------------------------

    def setup(self) -> None:
        self.key = self.server.init()["apiKey"]
        self.server.start()
        self.up.set()
        a = Api(self.server, self.key)
        self.chat_agents = [a.ok("POST", "/api/v2/agents", 201, json={"name": f"chat {i}"})["id"] for i in range(2)]
        self.train_agent = a.ok("POST", "/api/v2/agents", 201, json={"name": "train"})["id"]
        self.hostile_agent = a.ok("POST", "/api/v2/agents", 201, json={"name": "hostile"})["id"]
        self.public_agent = a.ok("POST", "/api/v2/agents", 201, json={"name": "public"})["id"]
        a.ok("PUT", f"/api/v2/agents/{self.public_agent}", 200,
             json={"visibility": "public", "ipRateLimits": {"limit": 200, "timeframe": 1, "message": "slow down"}})
        self.ctx = hostile.Ctx("127.0.0.1", self.server.port, self.key, self.hostile_agent, self.public_agent,
                               self.site.url(""))

    def count(self, stream: str, outcome) -> None:
        k = str(outcome)
        with self.lock:
            d = self.counts.setdefault(stream, {})
            d[k] = d.get(k, 0) + 1

    # ---- deaths ------------------------------------------------------------------------

    def watchdog(self) -> None:
        """Restarts the server when it dies, or when it has not answered its health
        check for --hung-after seconds (a hung server is a finding too)."""
        silent_since = None
        while not self.stop.is_set():
            if not self.server.alive():
                self.up.clear()
                with self.lock:
                    suspects = sorted(set(self.current_hostile.values()))
                self.record_death("soak", suspects)
                self.server.start()
                self.up.set()
                silent_since = None
            elif self.server.healthy(5):
                silent_since = None
            else:
                silent_since = silent_since or time.monotonic()
                if time.monotonic() - silent_since > self.args.hung_after:
                    self.up.clear()
                    with self.lock:
                        suspects = sorted(set(self.current_hostile.values()))
                    self.record_death("soak", suspects, hung=True)
                    self.server.kill9()
                    self.server.start()
                    self.up.set()
                    silent_since = None
            self.stop.wait(1)

    def record_death(self, phase: str, suspects: list[str], hung: bool = False) -> None:
        how = f"unresponsive for {self.args.hung_after:.0f} s, killed" if hung else self.server.exit_description()
        d = {"phase": phase, "at": time.strftime("%H:%M:%S"), "how": how,
             "hostile_in_flight": suspects, "log_tail": self.server.log_tail(12)}
        log(f"SERVER {'HUNG' if hung else 'DIED'} ({how}) in the {phase}; hostile in flight: {suspects}")
        with self.lock:
            self.deaths.append(d)

    # ---- phase 1: each hostile case alone -----------------------------------------------

    def probe_hostile(self) -> list[dict]:
        hostile.prepare()
        rng = random.Random(self.args.seed)
        out = []
        for c in hostile.CASES:
            if (self.args.only and c.name not in self.args.only) or c.name in self.args.exclude:
                continue
            t0 = time.monotonic()
            try:
                outcome = c.fn(self.ctx, rng)
            except Exception as e:  # noqa: BLE001 - a bug of the case itself, not of the server
                outcome = f"client error: {e!r}"
            secs = time.monotonic() - t0
            state = self.settle(self.args.hung_after)
            row = {"case": c.name, "outcome": outcome, "class": hostile.classify(outcome),
                   "secs": round(secs, 2), "server": state, "known_crasher": c.known_crasher, "note": c.note}
            if state != "up":
                self.record_death(f"hostile probe: {c.name}", [c.name], hung=state == "hung")
                row["how"] = self.deaths[-1]["how"]
                row["log"] = self.server.log_tail(5)
                if state == "hung":
                    self.server.kill9()
                self.server.start()
            elif outcome == "timeout":
                # The server may still be working on it: a fresh process, so the next
                # case is judged alone. Unless the case is a slow client, a request
                # that holds the server this long is a finding (and stays out of the mix).
                self.server.kill9()
                self.server.start()
                row["restarted"] = True
                if not c.waits:
                    row["server"] = state = f"up, but busy > {hostile.TIMEOUT} s (restarted)"
            log(f"hostile {c.name:24s} -> {outcome!s:8s} in {secs:6.2f}s, server {state}")
            out.append(row)
        return out

    def settle(self, timeout: float) -> str:
        """After a case: "up" once the server answers its health check, "dead" if the
        process exits first (an abort can take a moment: the core is written), "hung"
        if neither happens within `timeout` seconds."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if not self.server.alive():
                return "dead"
            if self.server.healthy(2):
                return "up"
            time.sleep(0.1)
        return "dead" if not self.server.alive() else "hung"

    # ---- the GET probe ------------------------------------------------------------------

    def start_probe(self, duration: float, samples: str) -> subprocess.Popen:
        return subprocess.Popen(
            [self.args.load, "--url", f"{self.server.url}/api/v2/agents", "-H", f"Authorization: Bearer {self.key}",
             "-c", "1", "--rate", str(self.args.probe_rate), "-d", str(duration), "--warmup", "0",
             "--expect", '"data"', "--samples", samples, "--label", "probe"],
            stdout=subprocess.PIPE, text=True)

    @staticmethod
    def read_samples(path: str) -> list[tuple[int, float, int]]:
        with open(path) as f:
            return [(int(a), int(b) / 1000, int(c)) for a, b, c in (line.split() for line in f)]

    # ---- phase 3: the mix -----------------------------------------------------------------

    def paced(self, name: str, rate: float, fn, seed: int) -> None:
        """Calls `fn(rng)` about `rate` times a second (exponential gaps) until the end."""
        self.lower_priority()
        rng = random.Random(seed)
        nxt = time.monotonic()
        while not self.stop.is_set():
            nxt += rng.expovariate(rate)
            delay = nxt - time.monotonic()
            if delay > 0:
                if self.stop.wait(delay):
                    return
            else:
                nxt = time.monotonic()  # fell behind: do not burst to catch up
            if not self.up.wait(5):
                continue
            try:
                outcome = fn(rng)
            except requests.Timeout:
                outcome = "timeout"
            except requests.ConnectionError:
                outcome = "closed"
            except Exception as e:  # noqa: BLE001 - a bug of the driver must not end the stream
                outcome = f"client error {type(e).__name__}"
            self.count(name, outcome)

    def mix(self) -> list[threading.Thread]:
        chat_api = {}
        convs: list[tuple[str, str]] = []

        def api(name: str, timeout: float = 60) -> Api:
            key = (name, threading.get_ident())
            if key not in chat_api:
                chat_api[key] = Api(self.server, self.key, timeout)
            return chat_api[key]

        def chat(rng, stream: bool):
            body: dict = {"message": f"soak {rng.random():.6f} [[delay:{rng.choice([0, 2, 5])}]]"}
            agent = rng.choice(self.chat_agents)
            with self.lock:
                if convs and rng.random() < 0.5:
                    agent, conv = rng.choice(convs)
                    body["conversationId"] = conv
            a = api("chat")
            if stream:
                how, info = a.chat_stream(agent, body)
                status, conv = info.get("status"), info.get("conversationId")
                if status == 200 and how != "finish":
                    return "200 cut"
            else:
                body["stream"] = False
                r = a.req("POST", f"/api/v2/agents/{agent}/chat", json=body)
                status = r.status_code
                conv = r.json()["data"]["metadata"]["conversationId"] if status == 200 else None
            if status == 200 and "conversationId" not in body:
                with self.lock:
                    convs.append((agent, conv))
                    if len(convs) > 40:
                        # Conversations retire, so history (and its tokenising) stays bounded.
                        convs.pop(0)
            return status

        def listing(rng):
            a = api("list")
            agent = rng.choice(self.chat_agents)
            path = rng.choice([f"/api/v2/agents/{agent}/conversations", "/api/v2/agents",
                               f"/api/v2/agents/{agent}", f"/api/v2/agents/{self.train_agent}/sources",
                               f"/api/v2/agents/{self.train_agent}/training-jobs"])
            return a.req("GET", path, params={"limit": 20} if path.endswith("s") else None).status_code

        visitor = [0]

        def widget(rng):
            visitor[0] += 1
            r = requests.post(f"{self.server.url}/widget/v1/agents/{self.public_agent}/chat",
                              json={"message": "hello from a visitor", "visitorId": f"v_soak_{visitor[0] % 50:08d}"},
                              headers={"Origin": "https://shop.example"}, timeout=60)
            return r.status_code

        live: list[str] = []

        def training(rng):
            a = api("train")
            n = rng.randrange(10 ** 9)
            if len(live) >= 25:
                # A bounded live set: the soak measures leaks, not a growing index.
                sid = live.pop(0)
                st = a.req("DELETE", f"/api/v2/agents/{self.train_agent}/sources/{sid}").status_code
                self.count("training delete", st)
            kind = rng.choices(["text", "file", "link"], [6, 3, 1])[0]
            text = " ".join(rng.choice(docs.WORDS_SMALL) for _ in range(rng.randrange(100, 800)))
            if kind == "text":
                r = a.req("POST", f"/api/v2/agents/{self.train_agent}/sources",
                          json={"type": "text", "name": f"t{n}", "content": text})
            elif kind == "link":
                r = a.req("POST", f"/api/v2/agents/{self.train_agent}/sources",
                          json={"type": "link", "url": self.site.section(), "linkType": "crawl"})
            else:
                fmt = rng.choice(["pdf", "docx", "html", "md"])
                data = {"pdf": lambda: docs.text_pdf(text[:300]), "docx": lambda: docs.text_docx([text]),
                        "html": lambda: f"<html><body><p>{text}</p></body></html>".encode(),
                        "md": lambda: f"# Doc {n}\n\n{text}".encode()}[fmt]()
                r = a.req("POST", f"/api/v2/agents/{self.train_agent}/sources", files={"file": (f"f{n}.{fmt}", data)})
            if r.status_code == 201:
                live.append(r.json()["id"])
            return r.status_code

        def crawl(rng):
            a = api("crawl", timeout=90)
            r = a.req("POST", "/v2/acts/apify~website-content-crawler/runs",
                      json={"startUrls": [{"url": self.site.section()}],
                            "maxCrawlPages": self.args.run_pages, "maxCrawlDepth": 20})
            if r.status_code != 201:
                return r.status_code
            rid = r.json()["data"]["id"]
            for _ in range(10):
                d = a.ok("GET", f"/v2/actor-runs/{rid}", params={"waitForFinish": 60})["data"]
                if d["status"] not in ("READY", "RUNNING", "ABORTING"):
                    break
            items = a.req("GET", f"/v2/actor-runs/{rid}/dataset/items", params={"format": rng.choice(["json", "csv"])})
            self.count("crawl items", items.status_code)
            return f"201 {d['status']}"

        heavy_last = [0.0]
        allowed = [c for c in hostile.CASES
                   if (self.args.include_crashers or c.name not in self.crashers)
                   and (not self.args.only or c.name in self.args.only)
                   and c.name not in self.args.exclude]

        def hostile_one(rng):
            cases = [c for c in allowed if not c.heavy or time.monotonic() - heavy_last[0] > 60]
            c = rng.choices(cases, [c.weight for c in cases])[0]
            if c.heavy:
                heavy_last[0] = time.monotonic()
            tid = threading.get_ident()
            with self.lock:
                self.current_hostile[tid] = c.name
            started = time.monotonic()
            outcome = "client error"
            try:
                outcome = c.fn(self.ctx, rng)
            finally:
                with self.lock:
                    self.current_hostile.pop(tid, None)
                    if c.heavy:
                        self.heavy_runs.append((started - self.load_t0, c.name, str(outcome),
                                                time.monotonic() - started))
            cls = hostile.classify(outcome)
            with self.lock:
                d = self.hostile_outcomes.setdefault(c.name, {})
                d[str(outcome)] = d.get(str(outcome), 0) + 1
            return cls if cls != "5xx" else outcome

        r = self.args
        plan = [("chat json", r.chat_rate, lambda g: chat(g, False)),
                ("chat stream", r.chat_rate, lambda g: chat(g, True)),
                ("listing", r.list_rate, listing),
                ("widget chat", r.widget_rate, widget),
                ("training", r.train_rate, training),
                ("crawl run", 1 / 15, crawl),
                ("hostile", r.hostile_rate, hostile_one),
                ("hostile", r.hostile_rate, hostile_one)]
        threads = [threading.Thread(target=self.paced, args=(name, rate, fn, i), daemon=True)
                   for i, (name, rate, fn) in enumerate(plan) if rate > 0]
        threads += [threading.Thread(target=self.slow_client, args=(i,), daemon=True) for i in range(r.slow_clients)]
        threads.append(threading.Thread(target=self.sample_rss, daemon=True))
        self.load_t0 = time.monotonic()
        for t in threads:
            t.start()
        return threads

    def lower_priority(self) -> None:
        """--driver-nice: this load thread runs at that nice value (Linux keeps it per
        thread), as if the load came from another machine; the probe, a process the main
        thread starts, keeps the normal priority, as the server does."""
        if self.args.driver_nice > 0:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.args.driver_nice)
        if self.args.driver_idle:
            # Nice alone only shares the CPU: the kernel (EEVDF) still lets a running
            # load thread finish its slice before the woken server or probe runs.
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))

    def slow_client(self, i: int) -> None:
        """Holds a connection whose request headers arrive a byte every few seconds
        (slowloris); when the server hangs up, opens another."""
        self.lower_priority()
        req = (b"GET /api/v2/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + self.key.encode()
               + b"\r\nX-Slow: " + b"s" * 200 + b"\r\n\r\n")
        while not self.stop.is_set():
            if not self.up.wait(5):
                continue
            try:
                with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as s:
                    with self.lock:
                        self.slow["opened"] += 1
                    for b in req:
                        if self.stop.wait(2):
                            return
                        s.sendall(bytes([b]))
                    head = s.recv(16)
                    with self.lock:
                        self.slow["answered" if head else "closed_by_server"] += 1
            except OSError:
                with self.lock:
                    self.slow["closed_by_server"] += 1
                self.stop.wait(1)

    def route_histogram(self, route: str) -> dict[str, int]:
        """The server's own latency histogram for `route` (cumulative counts by upper
        bound), from /metrics: what the handler chain measured, without the socket,
        the accept queue or the client."""
        try:
            text = requests.get(f"{self.server.url}/metrics", timeout=10).text
        except requests.RequestException:
            return {}
        out = {}
        pat = re.compile(r'^agentbase_http_request_duration_seconds_bucket\{route="([^"]*)",le="([^"]+)"\} (\d+)$')
        for line in text.splitlines():
            m = pat.match(line)
            if m and m.group(1) == route:
                out[m.group(2)] = int(m.group(3))
        return out

    def allocator(self) -> dict[str, float]:
        """The memory gauges from /metrics (the allocator's live heap, active and
        resident bytes; SQLite's bytes as `sqlite`); empty when the server does not
        report them."""
        try:
            text = requests.get(f"{self.server.url}/metrics", timeout=10).text
        except requests.RequestException:
            return {}
        names = {f"agentbase_allocator_{k}_bytes": k for k in ("allocated", "active", "resident")}
        names["agentbase_sqlite_memory_bytes"] = "sqlite"
        names["agentbase_c_malloc_free_bytes"] = "c_free"
        names["agentbase_c_malloc_in_use_bytes"] = "c_in_use"
        out = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in names:
                out[names[name]] = float(value)
        return out

    def sample_rss(self) -> None:
        t0 = time.monotonic()
        n = 0
        while not self.stop.is_set():
            mem, cpu = self.server.memory_kib(), self.server.cpu_seconds()
            if mem.get("VmRSS"):
                with self.lock:
                    self.rss.append((time.monotonic() - t0, mem["VmRSS"], cpu or 0.0,
                                     mem.get("RssAnon", 0), mem.get("RssFile", 0)))
            if n % 5 == 0:
                g = self.allocator()
                if "allocated" in g:
                    with self.lock:
                        self.heap.append((time.monotonic() - t0, g["allocated"], g.get("active", 0.0),
                                          g.get("resident", 0.0), g.get("sqlite", 0.0),
                                          g.get("c_in_use", 0.0), g.get("c_free", 0.0)))
            n += 1
            self.stop.wait(self.args.rss_every)

    # ---- the run --------------------------------------------------------------------------

    def run(self) -> dict:
        # The big hostile files (1 GiB bombs: seconds of zlib each) are built before
        # anything is measured. Built lazily, the first of each was compressed by the
        # driver in the middle of the load, and that CPU showed up as the server's tail.
        hostile.prepare()
        res: dict = {"load_before": loadavg()}
        self.setup()
        if not self.args.skip_probe:
            res["hostile_probe"] = self.probe_hostile()
        else:
            res["hostile_probe"] = []
        self.crashers = {row["case"] for row in res["hostile_probe"] if row["server"] != "up"}
        self.crashers |= {c.name for c in hostile.CASES if c.known_crasher and self.args.skip_probe}
        if res["hostile_probe"]:
            # A fresh process for the measured phases: whatever the probe left
            # behind (memory, stuck work) is the probe's finding, not the soak's.
            self.server.kill9()
            self.server.start()
        # Warm the paths once so the unloaded figure is not a cold start.
        a = Api(self.server, self.key)
        for _ in range(200):
            a.req("GET", "/api/v2/agents")
        log(f"unloaded probe: {self.args.quiet}s at {self.args.probe_rate}/s")
        quiet_file = os.path.join(self.tmp, "quiet.samples")
        load, stat = load1(), cpu_line()
        p = self.start_probe(self.args.quiet, quiet_file)
        res["probe_unloaded"] = json.loads(p.communicate()[0])
        run = judged(load, stat, self.args.max_load, self.args.max_steal)
        res["baseline"] = run
        log(f"unloaded probe: {described(run)}: {'valid' if run['valid'] else 'INVALID'}")
        res["server_histogram_unloaded"] = self.route_histogram(PROBE_ROUTE)
        res["load_during_unloaded"] = loadavg()
        log(f"loaded: {self.args.duration}s of mixed load")
        threads = self.mix()
        wd = threading.Thread(target=self.watchdog, daemon=True)
        wd.start()
        time.sleep(self.args.warmup)
        loaded_file = os.path.join(self.tmp, "loaded.samples")
        cpu0 = self.server.cpu_seconds() or 0.0
        hist0 = self.route_histogram(PROBE_ROUTE)
        p = self.start_probe(self.args.duration, loaded_file)
        trace = None
        if self.args.sched_trace:
            # The middle of the loaded phase: a few seconds of every context switch.
            time.sleep(max(0.0, self.args.duration / 2 - self.args.sched_trace / 2))
            trace_path = os.path.join(self.tmp, "sched.data")
            trace = schedtrace.record(self.args.sched_trace, trace_path)
        res["probe_loaded"] = json.loads(p.communicate()[0])
        if trace is not None:
            trace.wait()
            res["sched_trace"] = schedtrace.read(trace_path, self.server.proc.pid)
            if self.args.json:
                # The trace itself, for a closer look (`perf sched timehist -i …`).
                for suffix in ("", ".classes"):
                    shutil.copy(trace_path + suffix, self.args.json + ".sched.data" + suffix)
        res["server_histogram_loaded"] = diff_histogram(self.route_histogram(PROBE_ROUTE), hist0)
        res["server_cpu_share"] = round(((self.server.cpu_seconds() or 0.0) - cpu0) / self.args.duration, 2)
        res["load_end_of_load"] = loadavg()
        self.stop.set()
        for t in threads:
            t.join(timeout=200)
        res["server_alive_at_end"] = self.server.alive() and self.server.healthy(5)
        res["quiet_samples"] = self.read_samples(quiet_file)
        res["loaded_samples"] = self.read_samples(loaded_file)
        res.update({"counts": self.counts, "deaths": self.deaths, "hostile_outcomes": self.hostile_outcomes,
                    "heavy_runs": self.heavy_runs,
                    "slow_clients": self.slow, "rss": self.rss, "heap": self.heap,
                    "crashers_skipped": sorted(self.crashers),
                    "warmup": self.args.warmup, "duration": self.args.duration})
        return res


PROBE_ROUTE = "/api/v2/agents"


def diff_histogram(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {le: n - before.get(le, 0) for le, n in after.items()}


def histogram_rows(res: dict) -> list[str]:
    """Server-side share of the probe route's requests slower than each bound, beside
    the client's: if the server saw the slow requests too, the wait is inside the
    handler chain; if not, it is in the runtime's scheduling or the socket."""
    rows = []
    for phase in ("unloaded", "loaded"):
        h = res.get(f"server_histogram_{phase}") or {}
        total = h.get("+Inf", 0)
        if not total:
            continue
        samples = [ms for _, ms, _ in res.get("quiet_samples" if phase == "unloaded" else "loaded_samples", [])]
        cells = []
        for le in ("0.001", "0.0025", "0.005", "0.01", "0.025"):
            server = 100.0 * (total - h.get(le, total)) / total
            client = 100.0 * sum(1 for ms in samples if ms > float(le) * 1000) / len(samples) if samples else float("nan")
            cells.append(f"{server:.2f} / {client:.2f}")
        invalid = phase == "unloaded" and not res["baseline"]["valid"]
        rows.append(f"| {phase}{' (INVALID)' if invalid else ''} | {total} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    return ["### Slower than: server-side (route " + PROBE_ROUTE + ", all callers) / client-side (the probe), % of requests", "",
            "| phase | server requests | > 1 ms | > 2.5 ms | > 5 ms | > 10 ms | > 25 ms |", "|---|---|---|---|---|---|---|",
            *rows, ""]


def summarize(res: dict, args) -> tuple[str, bool]:
    out = []
    ok = True
    # Hostile probe.
    if res["hostile_probe"]:
        out += ["### Hostile cases, each alone", "", "| case | answer | s | server after |", "|---|---|---|---|"]
        for row in res["hostile_probe"]:
            server = row["server"] + (f" ({row['how']})" if "how" in row else "")
            out.append(f"| {row['case']} | {row['outcome']} | {row['secs']} | {server} |")
        out.append("")
    # Statuses.
    fivexx = 0
    out += ["### Answers by stream during the load", "", "| stream | answers |", "|---|---|"]
    for stream, d in sorted(res["counts"].items()):
        out.append(f"| {stream} | " + ", ".join(f"{k}: {v}" for k, v in sorted(d.items())) + " |")
        fivexx += sum(v for k, v in d.items() if k[:1] == "5" and k[:3].isdigit())
    out += ["", f"5xx answers: {fivexx}; slow clients: {res['slow_clients']}", ""]
    if res["hostile_outcomes"]:
        out += ["Hostile cases in the mix: " + "; ".join(
            f"{k} {dict(sorted(v.items()))}" for k, v in sorted(res["hostile_outcomes"].items())), ""]
    # Probe.
    q, l = res["probe_unloaded"]["total_ms"], res["probe_loaded"]["total_ms"]
    ratio = l["p99"] / q["p99"] if q["p99"] else float("inf")
    quiet_err = res["probe_unloaded"]["errors"] + res["probe_unloaded"]["non2xx"]
    load_err = res["probe_loaded"]["errors"] + res["probe_loaded"]["non2xx"]
    base = res["baseline"]
    base_note = (f"unloaded baseline: {described(base)}: " + ("valid" if base["valid"] else
                 f"INVALID (above {args.max_load} or {args.max_steal:.0%}): the baseline and the 2x comparison "
                 "are not results"))
    out += ["### GET /api/v2/agents (the probe, %s/s, one connection)" % args.probe_rate, "",
            "| | requests | p50 ms | p90 ms | p99 ms | max ms | errors/non-2xx |", "|---|---|---|---|---|---|---|",
            f"| unloaded{'' if base['valid'] else ' (INVALID)'} | {res['probe_unloaded']['ok']} | {q['p50']} | {q['p90']} "
            f"| {q['p99']} | {q['max']} | {quiet_err} |",
            f"| under the mix | {res['probe_loaded']['ok']} | {l['p50']} | {l['p90']} | {l['p99']} | {l['max']} | {load_err} |",
            "", base_note, "",
            (f"p99 loaded / unloaded = {ratio:.2f}x (target <= 2x)" if base["valid"]
             else "p99 loaded / unloaded: not reported (the unloaded baseline is INVALID)")
            + (f"; load threads at nice {args.driver_nice}" if args.driver_nice else "")
            + ("; load threads under SCHED_IDLE" if args.driver_idle else ""), ""]
    out += histogram_rows(res)
    if res.get("sched_trace"):
        out += schedtrace.report(res["sched_trace"])
    # Per-minute curve: probe p99 and RSS.
    mins: dict[int, list[float]] = {}
    for at, ms, st in res["loaded_samples"]:
        if st == 200:
            # The probe starts after the warm-up: its clock is shifted onto the load's.
            mins.setdefault(int((res["warmup"] + at / 1000) // 60), []).append(ms)
    rss_min: dict[int, list[int]] = {}
    anon_min: dict[int, list[int]] = {}
    file_min: dict[int, list[int]] = {}
    for t, kib, _, anon, file in res["rss"]:
        rss_min.setdefault(int(t // 60), []).append(kib)
        anon_min.setdefault(int(t // 60), []).append(anon)
        file_min.setdefault(int(t // 60), []).append(file)
    heap_min: dict[int, list[tuple[float, ...]]] = {}
    for t, allocated, _, resident, *rest in res.get("heap", []):
        # Older files lack SQLite (5th) and the C library's malloc (6th, 7th).
        rest = list(rest) + [0.0] * (3 - len(rest))
        heap_min.setdefault(int(t // 60), []).append((allocated, resident, rest[0], rest[1], rest[2]))
    mib = 1 << 20

    def heap_cell(m: int, i: int) -> str:
        v = [h[i] for h in heap_min.get(m, [])]
        return f"{percentile(v, 50) / mib:.1f}" if v else ""
    out += ["### Per minute of the load (minute 0 starts with the load; the probe starts after the warm-up)", "",
            "| minute | RSS median MiB | RSS max MiB | anonymous median MiB | file-backed median MiB "
            "| live heap median MiB | allocator resident median MiB | SQLite median MiB "
            "| C malloc in use / free median MiB | probe p99 ms "
            "| probe requests | heavy hostile cases (outcome, seconds) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    heavy_min: dict[int, list[str]] = {}
    for at, name, outcome, secs in res.get("heavy_runs", []):
        heavy_min.setdefault(int(at // 60), []).append(f"{name} ({outcome}, {secs:.1f})")
    for m in sorted(rss_min):
        lat = mins.get(m, [])
        p99 = percentile(lat, 99)
        out.append(f"| {m} | {percentile(rss_min[m], 50) / 1024:.1f} | {max(rss_min[m]) / 1024:.1f} | "
                   f"{percentile(anon_min[m], 50) / 1024:.1f} | {percentile(file_min[m], 50) / 1024:.1f} | "
                   f"{heap_cell(m, 0)} | {heap_cell(m, 1)} | {heap_cell(m, 2)} | "
                   f"{heap_cell(m, 3)} / {heap_cell(m, 4)} | "
                   f"{'' if p99 is None else f'{p99:.2f}'} | {len(lat)} | {'; '.join(heavy_min.get(m, []))} |")
    rss_after_warm = [kib for t, kib, *_ in res["rss"] if t >= args.rss_warm]
    growth = None
    if len(rss_after_warm) > 4:
        head = percentile(rss_after_warm[: len(rss_after_warm) // 5], 50)
        tail = percentile(rss_after_warm[-len(rss_after_warm) // 5:], 50)
        growth = (tail - head) / head
        out += ["", f"RSS after {args.rss_warm:.0f} s of warm-up: first fifth median {head / 1024:.1f} MiB, "
                    f"last fifth {tail / 1024:.1f} MiB ({growth * 100:+.1f}%; flat = within +10%)"]
        anon = [a for t, _, _, a, _ in res["rss"] if t >= args.rss_warm]
        a_head = percentile(anon[: len(anon) // 5], 50)
        a_tail = percentile(anon[-len(anon) // 5:], 50)
        if a_head:
            out += ["", f"Anonymous part (heap and stacks): {a_head / 1024:.1f} → {a_tail / 1024:.1f} MiB "
                        f"({(a_tail - a_head) / a_head * 100:+.1f}%)"]
        heap = [h for h in res.get("heap", []) if h[0] >= args.rss_warm]
        if len(heap) > 4:
            for i, what in ((1, "Live heap (allocated)"), (3, "Allocator resident"), (4, "SQLite"),
                            (5, "C malloc in use"), (6, "C malloc free, held")):
                v = [h[i] for h in heap if len(h) > i]
                if len(v) > 4:
                    h_head, h_tail = percentile(v[: len(v) // 5], 50), percentile(v[-len(v) // 5:], 50)
                    growth_h = f" ({(h_tail - h_head) / h_head * 100:+.1f}%)" if h_head else ""
                    out += ["", f"{what}: {h_head / mib:.1f} → {h_tail / mib:.1f} MiB{growth_h}"]
    out += ["", f"server CPU during the load: {res['server_cpu_share']} cores; load average before "
                f"{res['load_before']}, after the unloaded phase {res['load_during_unloaded']}, "
                f"at the end of the load {res['load_end_of_load']}"]
    if res["deaths"]:
        out += ["", "### Server deaths", ""]
        for d in res["deaths"]:
            out.append(f"- {d['phase']} at {d['at']}: {d['how']}; hostile in flight: {d['hostile_in_flight']}; "
                       f"log: {d['log_tail'].strip().splitlines()[-1:] if d['log_tail'].strip() else ''}")
    verdicts = {"no 5xx": fivexx == 0, "no server death": not res["deaths"],
                "RSS flat": growth is not None and growth <= 0.10,
                "p99 within 2x": ratio <= 2.0 if base["valid"] else None,  # None: not judged
                "alive at the end": res["server_alive_at_end"]}
    ok = all(v is not False for v in verdicts.values())
    out += ["", "verdict: " + ", ".join(
        f"{k}: {'not judged (baseline INVALID)' if v is None else 'yes' if v else 'NO'}" for k, v in verdicts.items())]
    return "\n".join(out), ok


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--load", required=True, help="the agentbase-bench-load binary (the GET probe)")
    p.add_argument("--duration", type=float, default=600, help="seconds of measured mixed load")
    p.add_argument("--warmup", type=float, default=30, help="seconds of load before the probe starts")
    # 180 s: 3,600 samples, so the unloaded p99 (the ratio's denominator) is not the
    # 12th-slowest of 1,200; at 60 s it moved 1.09-2.08 ms between identical runs.
    p.add_argument("--quiet", type=float, default=180, help="seconds of the unloaded probe")
    p.add_argument("--probe-rate", type=float, default=20)
    p.add_argument("--chat-rate", type=float, default=4, help="per second, each of JSON and stream")
    p.add_argument("--list-rate", type=float, default=4)
    p.add_argument("--widget-rate", type=float, default=1)
    p.add_argument("--train-rate", type=float, default=0.25)
    p.add_argument("--hostile-rate", type=float, default=0.5, help="per second, each of two threads")
    p.add_argument("--slow-clients", type=int, default=16)
    p.add_argument("--run-pages", type=int, default=60)
    p.add_argument("--page-delay-ms", type=int, default=20)
    p.add_argument("--hung-after", type=float, default=60,
                   help="seconds without a health answer after which the server counts as hung")
    p.add_argument("--rss-every", type=float, default=2)
    p.add_argument("--rss-warm", type=float, default=120, help="seconds of the load counted as warm-up for RSS")
    p.add_argument("--embedder", default="local")
    p.add_argument("--database", default="")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--driver-nice", type=int, default=0,
                   help="nice value of the load threads (0: the same priority as the server and probe)")
    p.add_argument("--driver-idle", action="store_true",
                   help="the load threads run under SCHED_IDLE (as if the load came from another machine)")
    p.add_argument("--include-crashers", action="store_true",
                   help="mix cases that killed the server in the probe into the load too")
    p.add_argument("--sched-trace", type=float, default=0,
                   help="seconds of `perf sched record` in the middle of the load (0: none)")
    p.add_argument("--skip-probe", action="store_true", help="no hostile probe (known crashers are left out)")
    p.add_argument("--only", nargs="*", default=[], help="only these hostile cases")
    p.add_argument("--exclude", nargs="*", default=[], help="leave these hostile cases out")
    p.add_argument("--max-load", type=float, default=float(os.environ.get("MAX_LOAD", 2.5)),
                   help="the unloaded baseline is invalid above this 1-minute load average (before or after)")
    p.add_argument("--max-steal", type=float, default=float(os.environ.get("MAX_STEAL", 0.02)),
                   help="the unloaded baseline is invalid above this share of CPU time stolen")
    p.add_argument("--json", default="")
    args = p.parse_args()
    s = Soak(args)
    try:
        res = s.run()
    finally:
        s.stop.set()
        s.server.stop()
        shutil.rmtree(s.tmp, ignore_errors=True)
    res["load_after"] = loadavg()
    text, ok = summarize(res, args)
    print(text)
    print(f"load average after: {res['load_after']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f)
    print(f"soak: {'PASS' if ok else 'FAIL'}"
          + ("" if res["baseline"]["valid"] else " (p99 within 2x not judged: the unloaded baseline is INVALID)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
