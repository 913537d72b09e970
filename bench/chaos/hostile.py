"""The hostile corpus the soak mixes into its load, and probes one case at a time
before it (a case after which the server is gone is a finding, reported with the
case's name and what it sent).

A case is a function `(ctx, rng) -> outcome` registered with `@case(weight, ...)`.
The outcome is the HTTP status (an int), or "closed" (the server hung up without
answering: how hyper refuses some header abuses) or "timeout". To add a case, write
one more decorated function: the probe and the soak pick it up by itself.

Targets (issue 12): never a 5xx, never a dead server. A 4xx is the expected answer;
a 2xx is reported as "accepted" (not a failure, but worth a look).
"""

from __future__ import annotations

import base64
import functools
import json
import random
import socket
import time
from dataclasses import dataclass
from typing import Callable

import requests

import docs


@dataclass
class Ctx:
    host: str
    port: int
    key: str
    agent: str          # an agent of the workspace (sources, chat, conversations)
    public_agent: str   # a public agent (widget)
    site: str           # base URL of the loopback website

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Case:
    name: str
    fn: Callable
    weight: float
    # Sends work that takes the server long (bombs): run it rarely in the soak.
    heavy: bool
    # Confirmed to take the server down on the code this harness was written
    # against (issue 12); still probed, and mixed into the soak with
    # --include-crashers.
    known_crasher: bool
    note: str
    # A slow client: its request is meant to take long, so a client-side timeout
    # is not held against the server.
    waits: bool = False


CASES: list[Case] = []


def case(weight: float = 1.0, heavy: bool = False, known_crasher: bool = False, note: str = "",
         waits: bool = False):
    def wrap(fn):
        CASES.append(Case(fn.__name__, fn, weight, heavy, known_crasher, note or (fn.__doc__ or "").strip(),
                          waits))
        return fn
    return wrap


TIMEOUT = 60


def send(ctx: Ctx, method: str, path: str, **kw):
    kw.setdefault("timeout", TIMEOUT)
    headers = kw.pop("headers", None) or {}
    if kw.pop("auth", True):
        headers = {**ctx.auth(), **headers}
    try:
        return requests.request(method, ctx.url + path, headers=headers, **kw).status_code
    except requests.Timeout:
        return "timeout"
    except requests.ConnectionError:
        return "closed"


def raw(ctx: Ctx, data: bytes, timeout: float = TIMEOUT, chunks: int = 1, pause: float = 0.0):
    """Sends `data` over a fresh socket (in `chunks` pieces, `pause` apart) and
    returns the status of the answer, or "closed"/"timeout"."""
    try:
        with socket.create_connection((ctx.host, ctx.port), timeout=timeout) as s:
            step = max(1, len(data) // chunks)
            for i in range(0, len(data), step):
                s.sendall(data[i:i + step])
                if pause:
                    time.sleep(pause)
            head = s.recv(64)
            if not head:
                return "closed"
            return int(head[9:12])
    except socket.timeout:
        return "timeout"
    except (ConnectionError, OSError, ValueError):
        return "closed"


def upload(ctx: Ctx, filename: str, data: bytes, timeout: float = TIMEOUT):
    return send(ctx, "POST", f"/api/v2/agents/{ctx.agent}/sources",
                files={"file": (filename, data)}, data={"name": filename}, timeout=timeout)


def crawl(ctx: Ctx, input_json: dict | str):
    body = input_json if isinstance(input_json, str) else json.dumps(input_json)
    return send(ctx, "POST", "/v2/acts/apify~website-content-crawler/runs", data=body,
                headers={"Content-Type": "application/json"})


# ---- JSON bodies ---------------------------------------------------------------------


@case(2)
def json_deep_array(ctx, rng):
    """A body of 100,000 nested arrays."""
    n = 100_000
    return send(ctx, "POST", "/api/v2/agents", data="[" * n + "]" * n)


@case(2)
def json_deep_object(ctx, rng):
    """An agent update whose field nests objects 50,000 deep."""
    n = 50_000
    return send(ctx, "PUT", f"/api/v2/agents/{ctx.agent}", data='{"name":' + '{"a":' * n + "1" + "}" * (n + 1))


@case(2)
def json_deep_chat(ctx, rng):
    """A chat body with a 100,000-deep value in a field."""
    n = 100_000
    return send(ctx, "POST", f"/api/v2/agents/{ctx.agent}/chat",
                data='{"message":"hi","stream":false,"x":' + "[" * n + "]" * n + "}")


@case(2)
def json_deep_v1(ctx, rng):
    """v1 chat with a deep message list."""
    n = 100_000
    return send(ctx, "POST", "/api/v1/chat", data='{"chatbotId":"' + ctx.agent + '","messages":' + "[" * n + "]" * n + "}")


@case(3)
def json_malformed(ctx, rng):
    """A valid body cut at a random place, or with random bytes spliced in."""
    good = json.dumps({"message": "hello", "stream": False, "conversationId": None})
    cut = rng.randrange(1, len(good))
    body = good[:cut] if rng.random() < 0.5 else good[:cut] + rng.randbytes(8).decode("latin-1") + good[cut:]
    return send(ctx, "POST", f"/api/v2/agents/{ctx.agent}/chat", data=body.encode("latin-1"))


@case(2)
def json_wrong_types(ctx, rng):
    """Fields of the wrong type, nulls, huge numbers."""
    bodies = [{"name": 5}, {"name": None}, {"name": "x", "temperature": 1e308},
              {"name": "x", "temperature": "hot"}, {"name": ["a"] * 10000},
              {"name": "x", "ipRateLimits": {"limit": -1, "timeframe": 10 ** 30}}]
    return send(ctx, "POST", "/api/v2/agents", json=rng.choice(bodies))


@case(1)
def json_huge_string_chat(ctx, rng):
    """A chat message of 1.9 MB (just under the body limit)."""
    return send(ctx, "POST", f"/api/v2/agents/{ctx.agent}/chat",
                json={"message": "word " * 380_000, "stream": False})


@case(1)
def json_many_keys(ctx, rng):
    """An object with 150,000 keys."""
    return send(ctx, "POST", "/api/v2/agents", data="{" + ",".join(f'"k{i}":1' for i in range(150_000)) + "}")


# ---- sizes, headers, URLs -----------------------------------------------------------


@case(1, heavy=True)
def body_oversized(ctx, rng):
    """An 8 MB JSON body (limit 2 MB)."""
    return send(ctx, "POST", "/api/v2/agents", data=b'{"name":"' + b"a" * (8 << 20) + b'"}')


@case(0.5, heavy=True)
def upload_oversized(ctx, rng):
    """A 25 MB upload (limit 20 MB)."""
    return upload(ctx, "big.txt", b"a" * (25 << 20))


@case(1, waits=True)
def body_lying_length(ctx, rng):
    """Content-Length larger than the body, then the connection stays open."""
    return raw(ctx, b"POST /api/v2/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ctx.key.encode()
               + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":", timeout=15)


@case(2)
def header_huge(ctx, rng):
    """One 1 MB header."""
    return raw(ctx, b"GET /api/v2/agents HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")


@case(1)
def header_many(ctx, rng):
    """10,000 small headers."""
    hs = b"".join(b"X-H%d: v\r\n" % i for i in range(10_000))
    return raw(ctx, b"GET /api/v2/agents HTTP/1.1\r\nHost: x\r\n" + hs + b"\r\n")


@case(1)
def header_huge_auth(ctx, rng):
    """A 60 kB bearer token of random bytes."""
    tok = base64.b64encode(rng.randbytes(45_000))
    return raw(ctx, b"GET /api/v2/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + b"\r\n\r\n")


@case(1)
def header_binary(ctx, rng):
    """Header values with control and high bytes."""
    return raw(ctx, b"GET /api/v2/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \x01\xff\xfe"
               + b"\r\nX-Forwarded-For: " + rng.randbytes(40).replace(b"\r", b"").replace(b"\n", b"") + b"\r\n\r\n")


@case(1)
def url_huge(ctx, rng):
    """A 1 MB query string."""
    return raw(ctx, b"GET /api/v2/agents?cursor=" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n")


@case(2)
def path_junk(ctx, rng):
    """Percent-encoded junk, NULs, traversal and odd methods."""
    paths = ["/api/v2/agents/%00%ff%fe", "/api/v2/agents/..%2f..%2fetc%2fpasswd", "/api/v2/agents/" + "a" * 5000,
             "/api/v2/agents/x/conversations/%zz", "/v2/datasets/%ff/items", "/widget/v1/agents/%00/config"]
    method = rng.choice(["GET", "DELETE", "PATCH", "PROPFIND", "POST"])
    return send(ctx, method, rng.choice(paths))


@case(3)
def cursor_bogus(ctx, rng):
    """Cursors that are not base64, base64 of junk, of JSON of the wrong shape, or huge."""
    junk = [b"!!!", base64.urlsafe_b64encode(rng.randbytes(30)),
            base64.urlsafe_b64encode(json.dumps({"t": "x", "id": [1, 2]}).encode()),
            base64.urlsafe_b64encode(json.dumps({"t": 10 ** 40, "id": None}).encode()),
            base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000), b"A" * 60_000]
    c = rng.choice(junk).decode()
    path = rng.choice(["/api/v2/agents", f"/api/v2/agents/{ctx.agent}/conversations",
                       f"/api/v2/agents/{ctx.agent}/sources"])
    return send(ctx, "GET", path, params={"cursor": c, "limit": rng.choice(["10", "-1", "1e99", "abc", "0"])})


@case(2)
def dataset_params_bogus(ctx, rng):
    """Dataset items with absurd offset/limit/fields/format."""
    params = rng.choice([{"offset": "-1"}, {"limit": "1" + "0" * 30}, {"format": "xml"},
                         {"fields": ",".join(f"f{i}" for i in range(20_000))}, {"desc": "maybe"}])
    return send(ctx, "GET", "/v2/datasets/nonexistent/items", params=params)


# ---- crawl input ------------------------------------------------------------------------


@case(1, known_crasher=True)
def glob_bomb_depth(ctx, rng):
    """Issue 12: an include glob nesting braces 20,000 deep (recursive expansion)."""
    g = "https://example.com/" + "{" * 20_000 + "a" + "}" * 20_000
    return crawl(ctx, {"startUrls": [{"url": ctx.site + "/s0/"}], "includeUrlGlobs": [g], "maxCrawlPages": 1})


@case(1)
def glob_bomb_fanout(ctx, rng):
    """An include glob of 12 ten-way alternatives: 10^12 expansions."""
    g = ctx.site + "/" + "{a,b,c,d,e,f,g,h,i,j}" * 12
    return crawl(ctx, {"startUrls": [{"url": ctx.site + "/s0/"}], "includeUrlGlobs": [g], "maxCrawlPages": 1})


@case(1)
def glob_bomb_stars(ctx, rng):
    """An exclude glob of 5,000 `*`s (backtracking)."""
    g = ctx.site + "/" + "*a" * 5_000 + "b"
    return crawl(ctx, {"startUrls": [{"url": ctx.site + "/s0/"}], "excludeUrlGlobs": [g], "maxCrawlPages": 1})


@case(2)
def crawl_input_junk(ctx, rng):
    """Crawl inputs of the wrong shape, absurd limits, non-http URLs."""
    inputs = [{"startUrls": "http://x"}, {"startUrls": [{"url": "javascript:alert(1)"}]},
              {"startUrls": [{"url": "file:///etc/passwd"}]}, {"maxCrawlPages": -5},
              {"startUrls": [{"url": ctx.site}], "maxCrawlDepth": 10 ** 20},
              {"startUrls": [{"url": "http://" + "a" * 70_000 + ".com"}]},
              {"startUrls": [{"url": ctx.site}] * 50_000}]
    return crawl(ctx, rng.choice(inputs))


# ---- uploads ----------------------------------------------------------------------------


def _upload_cases() -> None:
    """One junk and one truncated case per document format, so an answer can be
    told apart by format."""
    whole = {"pdf": lambda: docs.text_pdf("a truncated document " * 20),
             "docx": lambda: docs.text_docx(["a truncated document"] * 50),
             "html": lambda: b"<html><body>" + b"<p>text</p>" * 500 + b"</body></html>",
             "md": lambda: b"# Title\n\n" + b"- item\n" * 500,
             "txt": lambda: "plain text \u00e9 ".encode() * 500}
    for ext, make in whole.items():
        def junk(ctx, rng, ext=ext):
            return upload(ctx, f"junk.{ext}", docs.junk(rng, rng.randrange(1, 200_000)))

        def cut(ctx, rng, ext=ext, make=make):
            return upload(ctx, f"cut.{ext}", docs.truncated(make(), rng))

        junk.__name__, cut.__name__ = f"upload_junk_{ext}", f"upload_truncated_{ext}"
        case(1, note=f"Random bytes named .{ext}.")(junk)
        case(1, note=f"A valid .{ext} cut at a random offset.")(cut)


_upload_cases()


@case(1, known_crasher=True)
def pdf_nested_trailer(ctx, rng):
    """Issue 12: a PDF whose trailer nests `[` 100,000 deep."""
    return upload(ctx, "nested.pdf", blob("pdf_nested_trailer"))


@case(1)
def pdf_nested_dict(ctx, rng):
    """A PDF object of 50,000 nested dictionaries."""
    return upload(ctx, "nested-dict.pdf", blob("pdf_nested_dict"))


@case(0.3, heavy=True)
def pdf_flate_bomb(ctx, rng):
    """A PDF whose content stream inflates to 1 GiB."""
    return upload(ctx, "bomb.pdf", blob("pdf_flate_bomb"), timeout=180)


@case(0.3, heavy=True)
def docx_zip_bomb(ctx, rng):
    """A DOCX whose document.xml inflates to 1 GiB."""
    return upload(ctx, "bomb.docx", blob("docx_zip_bomb"), timeout=180)


@case(1)
def docx_nested(ctx, rng):
    """A DOCX whose document.xml nests elements 200,000 deep."""
    return upload(ctx, "nested.docx", blob("docx_nested"))


@case(1)
def html_nested(ctx, rng):
    """An HTML upload nesting `<div>` 200,000 deep."""
    return upload(ctx, "nested.html", blob("html_nested"))


@case(1)
def html_nested_list(ctx, rng):
    """An HTML upload nesting `<ul><li>` 100,000 deep (list rendering recurses)."""
    return upload(ctx, "nested-list.html",
                  blob("html_nested_list"))


@case(1)
def multipart_malformed(ctx, rng):
    """A multipart body with a broken boundary or no file field."""
    bodies = [(b"--xx\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc", "multipart/form-data; boundary=xx"),
              (b"garbage", "multipart/form-data; boundary=" + "b" * 5000),
              (b"--xx--\r\n", "multipart/form-data; boundary=xx"),
              (b"--xx\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nn\r\n--xx--\r\n", "multipart/form-data; boundary=xx")]
    body, ct = rng.choice(bodies)
    return send(ctx, "POST", f"/api/v2/agents/{ctx.agent}/sources", data=body, headers={"Content-Type": ct})


# ---- widget and v1 -------------------------------------------------------------------------


@case(2)
def widget_junk(ctx, rng):
    """Widget chat with bad visitor ids, huge messages, junk bodies, no key."""
    bodies = [{"message": "hi", "visitorId": "../../x"}, {"message": "x" * 5000, "visitorId": "v_visitor_0001"},
              {"message": "hi", "visitorId": "v_visitor_0001", "conversationId": "'; DROP TABLE x"},
              "[" * 50_000, {"message": ["a"], "visitorId": 5}]
    b = rng.choice(bodies)
    data = b if isinstance(b, str) else json.dumps(b)
    return send(ctx, "POST", f"/widget/v1/agents/{ctx.public_agent}/chat", data=data, auth=False,
                headers={"Origin": "https://evil.example", "Content-Type": "application/json"})


@case(1)
def v1_history_huge(ctx, rng):
    """v1 chat with 20,000 messages of client-sent history."""
    msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": "history line"} for i in range(20_000)]
    msgs.append({"role": "user", "content": "hi"})
    return send(ctx, "POST", "/api/v1/chat", json={"chatbotId": ctx.agent, "messages": msgs, "stream": False})


@case(1)
def v1_conversation_junk(ctx, rng):
    """v1 conversation ids and params of the wrong shape."""
    return send(ctx, "GET", "/api/v1/get-conversations",
                params=rng.choice([{"chatbotId": ctx.agent, "startDate": "yesterday"},
                                   {"chatbotId": "x" * 10_000}, {"chatbotId": ctx.agent, "page": "-1", "size": "1e9"}]))


# ---- slow clients (short forms; the soak also holds slow connections open) -------------


@case(1, waits=True)
def slow_headers(ctx, rng):
    """Headers sent a few bytes a second for 10 s (slowloris)."""
    req = b"GET /api/v2/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ctx.key.encode() + b"\r\n\r\n"
    return raw(ctx, req, timeout=30, chunks=20, pause=0.5)


@case(1, waits=True)
def slow_body(ctx, rng):
    """A JSON body sent a few bytes a second for 10 s."""
    body = json.dumps({"name": "slow body agent " + "x" * 40}).encode()
    head = (b"POST /api/v2/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ctx.key.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
    return raw(ctx, head + body, timeout=30, chunks=20, pause=0.5)


# Big hostile files, built once per process (the bombs take seconds to compress).
BLOBS: dict[str, Callable[[], bytes]] = {
    "pdf_nested_trailer": docs.pdf_nested_trailer,
    "pdf_nested_dict": docs.pdf_nested_dict,
    "pdf_flate_bomb": docs.pdf_flate_bomb,
    "docx_zip_bomb": docs.docx_zip_bomb,
    "docx_nested": docs.docx_nested,
    "html_nested": docs.html_nested,
    "html_nested_list": lambda: b"<html><body>" + b"<ul><li>" * 100_000 + b"x" + b"</li></ul>" * 100_000
    + b"</body></html>",
}
_BUILT: dict[str, bytes] = {}


def blob(name: str) -> bytes:
    if name not in _BUILT:
        _BUILT[name] = BLOBS[name]()
    return _BUILT[name]


def prepare() -> None:
    """Builds every big file now, so no case's timing includes building it."""
    for name in BLOBS:
        blob(name)


def by_name() -> dict[str, Case]:
    return {c.name: c for c in CASES}


def classify(outcome) -> str:
    if isinstance(outcome, int):
        if outcome >= 500:
            return "5xx"
        if outcome >= 400:
            return "4xx"
        return "accepted"
    return outcome  # "closed" | "timeout"


@functools.cache
def names() -> list[str]:
    return [c.name for c in CASES]
