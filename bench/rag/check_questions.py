#!/usr/bin/env python3
"""Mechanical check of bench/rag/questions.jsonl against the installed Rust docs.

Usage:
    python3 bench/rag/check_questions.py [questions.jsonl] [--docs DIR] [--min N] [--stats]

DIR defaults to $(rustc --print sysroot)/share/doc/rust/html (or $RUST_DOCS).
Exits non-zero and lists every failure if any check fails.

Checks, per line:
  * valid JSON object with string fields id, question, answer_hint and a list `relevant`
  * ids unique; questions unique (case/whitespace-insensitive)
  * `relevant` empty  <=>  "offtopic": true  (off-topic lines need no answer_hint)
  * every relevant path is relative, exists under DIR, is an .html file and is
    not an mdBook redirect stub (<meta http-equiv="refresh">) or a print.html
  * the answer_hint occurs, case-insensitively with whitespace normalised, in the
    visible text of EVERY relevant page (the <main> element when present, with
    <script>/<style> dropped, tags stripped and entities unescaped), except that
    an optional "page_hints": {path: phrase} gives the phrase to look for in a
    page other than the first one instead (used when the pages share no phrase)
Totals: at least --min (default 100) on-topic questions.
"""
import argparse
import collections
import html
import json
import os
import re
import subprocess
import sys

_SCRIPT = re.compile(r"<(script|style|noscript)\b.*?</\1\s*>", re.S | re.I)
_MAIN = re.compile(r"<main\b[^>]*>(.*)</main\s*>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_WS = re.compile(r"\s+")


def norm(s: str) -> str:
    return _WS.sub(" ", s).strip().lower()


def visible_text(raw: str) -> str:
    raw = _SCRIPT.sub(" ", raw)
    m = _MAIN.search(raw)
    if m:
        raw = m.group(1)
    # Keep inline tags from gluing words together only where they are block-ish;
    # replacing every tag by "" keeps `Rc<RefCell<T>>` code spans intact, and
    # whitespace around block tags in mdBook output is already present.
    text = _TAG.sub("", raw)
    return norm(html.unescape(text))


def default_docs() -> str:
    env = os.environ.get("RUST_DOCS")
    if env:
        return env
    root = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True,
                          text=True, check=True).stdout.strip()
    return os.path.join(root, "share", "doc", "rust", "html")


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("file", nargs="?", default=os.path.join(here, "questions.jsonl"))
    ap.add_argument("--docs", default=None)
    ap.add_argument("--min", type=int, default=100)
    ap.add_argument("--stats", action="store_true", help="print per-book counts")
    args = ap.parse_args()
    docs = args.docs or default_docs()

    errors = []
    ids = set()
    questions = set()
    cache = {}
    on_topic = 0
    offtopic = 0
    pages = set()
    per_book = collections.Counter()
    per_book_pages = collections.defaultdict(set)
    multi = 0

    def page_text(rel):
        if rel not in cache:
            with open(os.path.join(docs, rel), encoding="utf-8", errors="replace") as f:
                raw = f.read()
            stub = bool(re.search(r'http-equiv="refresh"', raw, re.I))
            cache[rel] = (stub, visible_text(raw))
        return cache[rel]

    with open(args.file, encoding="utf-8") as f:
        lines = f.readlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            errors.append(f"line {n}: blank line")
            continue
        try:
            q = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"line {n}: bad JSON: {e}")
            continue
        if not isinstance(q, dict):
            errors.append(f"line {n}: not an object")
            continue
        qid = q.get("id")
        where = f"line {n} ({qid})"
        for key in ("id", "question"):
            if not isinstance(q.get(key), str) or not q[key].strip():
                errors.append(f"{where}: missing/empty string field {key!r}")
        if qid in ids:
            errors.append(f"{where}: duplicate id")
        ids.add(qid)
        qn = norm(q.get("question") or "")
        if qn in questions:
            errors.append(f"{where}: duplicate question text")
        questions.add(qn)
        rel_list = q.get("relevant")
        if not isinstance(rel_list, list) or not all(isinstance(r, str) for r in rel_list):
            errors.append(f"{where}: 'relevant' must be a list of strings")
            continue
        is_off = q.get("offtopic") is True
        if not rel_list:
            if not is_off:
                errors.append(f"{where}: empty 'relevant' without \"offtopic\": true")
            offtopic += 1
            continue
        if is_off:
            errors.append(f"{where}: offtopic question with non-empty 'relevant'")
            continue
        on_topic += 1
        if len(rel_list) > 1:
            multi += 1
        if len(set(rel_list)) != len(rel_list):
            errors.append(f"{where}: duplicate path in 'relevant'")
        hint = q.get("answer_hint")
        if not isinstance(hint, str) or not hint.strip():
            errors.append(f"{where}: missing answer_hint")
            continue
        hint_n = norm(hint)
        page_hints = q.get("page_hints", {})
        if not isinstance(page_hints, dict) or not all(
                isinstance(v, str) and v.strip() for v in page_hints.values()):
            errors.append(f"{where}: 'page_hints' must map paths to non-empty strings")
            page_hints = {}
        for k in page_hints:
            if k not in rel_list:
                errors.append(f"{where}: page_hints key {k!r} not in 'relevant'")
        if rel_list[0] in page_hints:
            errors.append(f"{where}: the first relevant page must use answer_hint")
        books = set()
        for rel in rel_list:
            if rel.startswith("/") or ".." in rel.split("/") or not rel.endswith(".html"):
                errors.append(f"{where}: bad path {rel!r}")
                continue
            if rel.count("/") == 1 and os.path.basename(rel) == "print.html":
                errors.append(f"{where}: print.html is the whole book, not a page: {rel}")
                continue
            if not os.path.isfile(os.path.join(docs, rel)):
                errors.append(f"{where}: no such file {rel}")
                continue
            stub, text = page_text(rel)
            if stub:
                errors.append(f"{where}: {rel} is a redirect stub")
                continue
            h = page_hints.get(rel, hint)
            if norm(h) not in text:
                errors.append(f"{where}: hint {h!r} not in {rel}")
            pages.add(rel)
            book = rel.split("/")[0]
            books.add(book)
            per_book_pages[book].add(rel)
        for b in books:
            per_book[b] += 1

    if on_topic < args.min:
        errors.append(f"only {on_topic} on-topic questions (< {args.min})")

    print(f"{len(lines)} lines: {on_topic} on-topic, {offtopic} off-topic; "
          f"{len(pages)} distinct relevant pages; {multi} questions with >1 relevant page")
    if args.stats:
        print("questions per book (a question counts once for each book it cites):")
        for b, c in per_book.most_common():
            print(f"  {b:18s} {c:4d} questions, {len(per_book_pages[b]):3d} pages")
    if errors:
        print(f"{len(errors)} FAILURES:", file=sys.stderr)
        for e in errors:
            print("  " + e, file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
