"""What the chaos and soak benchmarks share: the real `agentbase serve` on a data dir
(SQLite or PostgreSQL), started, killed with SIGKILL and restarted; a website served
on loopback for link sources and crawl runs; a thin API client; small statistics.

Only the standard library and `requests` (both on the machine) are used.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from docs import WORDS_SMALL

# The scripted model under the default model name, limits out of the way (still
# checked on every request), the real crawler with loopback allowed (the site below).
BASE_ENV = {
    "AGENTBASE__PROVIDERS__local__KIND": "scripted",
    "AGENTBASE__PROVIDERS__scripted__KIND": "scripted",
    "AGENTBASE__MODELS__auto__PROVIDER": "scripted",
    "AGENTBASE__MODELS__auto__CREDITS": "1",
    "AGENTBASE__AGENTS__DEFAULT_MODEL": "auto",
    "AGENTBASE__RATE_LIMIT__REQUESTS": "1000000000",
    "AGENTBASE__PLANS__STANDARD": "1000000000000",
    "AGENTBASE__CRAWLER__ALLOW_PRIVATE_NETWORKS": "true",
    "AGENTBASE__LOG__LEVEL": "warn",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(*args) -> None:
    print(time.strftime("%H:%M:%S"), *args, flush=True)


class Server:
    """One `agentbase serve` process on a fixed port, so clients reconnect to the
    same address after each restart."""

    def __init__(self, binary: str, data_dir: str, extra_env: dict | None = None,
                 models_dir: str = "/var/cache/agentbase-models"):
        self.binary = binary
        self.data_dir = data_dir
        self.port = free_port()
        self.env = dict(os.environ)
        self.env.update(BASE_ENV)
        self.env.update(extra_env or {})
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log_path = os.path.join(data_dir, "serve.log")
        os.makedirs(data_dir, exist_ok=True)
        models = os.path.join(data_dir, "models")
        if not os.path.exists(models):
            os.symlink(models_dir, models)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def init(self) -> dict:
        out = subprocess.run([self.binary, "--data-dir", self.data_dir, "init", "--json"],
                             env=self.env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    def start(self, timeout: float = 120.0) -> float:
        """Starts the server and waits until it answers /api/v2/health; returns the
        seconds that took."""
        t0 = time.monotonic()
        self.starts += 1
        logf = open(self.log_path, "a")
        logf.write(f"\n===== start {self.starts} at {time.strftime('%H:%M:%S')} =====\n")
        logf.flush()
        self.proc = subprocess.Popen(
            [self.binary, "--data-dir", self.data_dir, "serve", "--bind", f"127.0.0.1:{self.port}"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=logf, start_new_session=True)
        logf.close()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agentbase exited with {self.proc.returncode} while starting:\n"
                                   + self.log_tail())
            if self.healthy(0.5):
                return time.monotonic() - t0
            time.sleep(0.05)
        raise RuntimeError("agentbase did not come up:\n" + self.log_tail())

    def healthy(self, timeout: float = 2.0) -> bool:
        try:
            return requests.get(self.url + "/api/v2/health", timeout=timeout).status_code == 200
        except requests.RequestException:
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def exit_description(self) -> str:
        """How the process ended (signal or code), for a finding."""
        rc = self.proc.returncode if self.proc else None
        if rc is None:
            return "running"
        if rc < 0:
            return f"killed by {signal.Signals(-rc).name}"
        return f"exited with {rc}"

    def memory_kib(self) -> dict[str, int]:
        """VmRSS and its parts (RssAnon: the heap and stacks; RssFile: mapped files
        such as index snapshots, counted while their pages are cached), in KiB."""
        out: dict[str, int] = {}
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    key = line.split(":", 1)[0]
                    if key in ("VmRSS", "RssAnon", "RssFile"):
                        out[key] = int(line.split()[1])
        except (OSError, AttributeError):
            pass
        return out

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process so far."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, AttributeError, IndexError):
            return None

    def log_tail(self, n: int = 30) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class Api:
    """A `requests` session (one per thread) with the key and the base URL."""

    def __init__(self, server: Server, key: str, timeout: float = 30.0):
        self.server = server
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {key}"
        self.timeout = timeout

    def req(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", self.timeout)
        return self.s.request(method, self.server.url + path, **kw)

    def ok(self, method: str, path: str, want: int = 200, **kw):
        r = self.req(method, path, **kw)
        if r.status_code != want:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    def chat_stream(self, agent: str, body: dict) -> tuple[str, dict]:
        """A streamed turn. Returns ("finish", info) when the stream reached its
        `finish` chunk (acknowledged), else (how it ended, info)."""
        info: dict = {"text": "", "conversationId": None, "messageId": None}
        with self.req("POST", f"/api/v2/agents/{agent}/chat", json=body, stream=True) as r:
            info["status"] = r.status_code
            if r.status_code != 200:
                info["body"] = r.text[:300]
                return f"status {r.status_code}", info
            finished = False
            for line in r.iter_lines():
                if not line.startswith(b"data: "):
                    continue
                data = line[6:]
                if data == b"[DONE]":
                    break
                chunk = json.loads(data)
                t = chunk.get("type")
                if t == "start":
                    info["messageId"] = chunk.get("messageId")
                    meta = chunk.get("messageMetadata") or {}
                    info["conversationId"] = meta.get("conversationId") or info["conversationId"]
                elif t == "message-metadata":
                    meta = chunk.get("messageMetadata") or {}
                    info["conversationId"] = meta.get("conversationId") or info["conversationId"]
                elif t == "text-delta":
                    info["text"] += chunk.get("delta", "")
                elif t == "error":
                    info["error"] = chunk.get("errorText")
                elif t == "finish":
                    finished = True
            return ("finish" if finished else "cut"), info


# ---- the website on loopback -------------------------------------------------------

def page_words(n: int, count: int) -> str:
    rng = random.Random(n)
    return " ".join(rng.choice(WORDS_SMALL) for _ in range(count))


class Site:
    """A website of sections `/sK/` (any K, so every run or source can have its own
    start URL and scope), each a tree of `pages` pages: `/sK/` links to `/sK/p1`..,
    `/sK/pN` to its `fanout` children. Every answer is held back `delay_ms`, so
    crawls take a while and a kill lands in the middle of them."""

    def __init__(self, pages: int = 3000, fanout: int = 4, delay_ms: int = 40):
        self.pages, self.fanout, self.delay = pages, fanout, delay_ms / 1000
        self.served = 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                parts = self.path.split("?")[0].split("/")
                n = None
                if len(parts) == 3 and parts[1][:1] == "s" and parts[1][1:].isdigit():
                    if parts[2] == "":
                        n = 0
                    elif parts[2][:1] == "p" and parts[2][1:].isdigit() and int(parts[2][1:]) < site.pages:
                        n = int(parts[2][1:])
                if n is not None:
                    section = parts[1]
                    time.sleep(site.delay)
                    site.served += 1
                    kids = range(site.fanout * n + 1, min(site.fanout * n + site.fanout + 1, site.pages))
                    links = "".join(f'<li><a href="/{section}/p{k}">Page {k}</a></li>' for k in kids)
                    paras = "".join(f"<p>{page_words(n * 10 + i, 60)}.</p>" for i in range(4))
                    body = (f"<!doctype html><html><head><title>Page {n} of {section}</title></head><body>"
                            f"<nav><ul>{links}</ul></nav><main><article><h1>Page {n}</h1>"
                            f"<h2>About page {n}</h2>{paras}</article></main></body></html>").encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                else:
                    body = b"not here"
                    self.send_response(404)
                    self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.sections = 0
        self.lock = threading.Lock()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def section(self) -> str:
        """The start URL of a section no one has used yet."""
        with self.lock:
            self.sections += 1
            return self.url(f"/s{self.sections}/")


# ---- statistics ----------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))
    return v[k]


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])
