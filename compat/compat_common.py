"""What the Python compatibility scripts share: where the reference files are, and a
recorder that writes every HTTP response `requests` sees to a transcript (JSON lines),
so that openapi_check.py can validate all of them against the official schemas.

The reference files are read from `../shared/reference/` beside the repository (never
copied into it); AGENTBASE_SHARED_DIR points elsewhere when needed."""

import importlib.util
import json
import os
import pathlib

import requests

COMPAT_DIR = pathlib.Path(__file__).resolve().parent
REPO_ROOT = COMPAT_DIR.parent


def shared_dir() -> pathlib.Path:
    """The project's shared/ folder: AGENTBASE_SHARED_DIR, else ../shared beside the repo."""
    configured = os.environ.get("AGENTBASE_SHARED_DIR")
    return pathlib.Path(configured) if configured else REPO_ROOT.parent / "shared"


def reference_file(name: str) -> pathlib.Path:
    path = shared_dir() / "reference" / name
    if not path.is_file():
        raise SystemExit(f"reference file not found: {path} (set AGENTBASE_SHARED_DIR)")
    return path


def load_seed_snippets():
    """Imports the seed's snippets exactly as they are in shared/reference."""
    path = reference_file("seed_snippets.py")
    spec = importlib.util.spec_from_file_location("seed_snippets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def origin_of(base_url: str) -> str:
    """http://host:port/api/v2 -> http://host:port (the seed's CHATBASE is an origin)."""
    base = base_url.rstrip("/")
    for suffix in ("/api/v2", "/api/v1"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


class Recorder:
    """Records every response sent through `requests` (module functions and sessions
    alike) without touching the calling code: it wraps `requests.Session.send`."""

    def __init__(self, path, client: str):
        self.path = path
        self.client = client
        self.case = None
        self.entries = []
        self._original = None

    def __enter__(self):
        original = requests.sessions.Session.send
        recorder = self

        def send(session, request, **kwargs):
            response = original(session, request, **kwargs)
            if not kwargs.get("stream"):
                recorder.add(request, response)
            return response

        self._original = original
        requests.sessions.Session.send = send
        return self

    def __exit__(self, *exc):
        requests.sessions.Session.send = self._original
        return False

    def add(self, request, response):
        body = None
        if request.body is not None:
            raw = request.body.decode() if isinstance(request.body, bytes) else request.body
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        entry = {
            "client": self.client,
            "case": self.case,
            "method": request.method,
            "url": request.url,
            "requestBody": body,
            "status": response.status_code,
            "headers": {k.lower(): v for k, v in response.headers.items()},
            "body": response.text,
        }
        self.entries.append(entry)
        if self.path:
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")
