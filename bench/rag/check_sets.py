#!/usr/bin/env python3
"""Mechanical check of the PostgreSQL and Python question sets (bench/rag/sets/)
and of the three grounded-answer sets against the installed Debian docs.

Usage:
    python3 bench/rag/check_sets.py            # exit 1 and a list on any failure

Checks: valid JSON lines with unique ids and questions; `split` is dev or test and
both halves are non-empty; every relevant page exists; the answer_hint (or the
page's `page_hints` phrase) occurs, case-insensitively with whitespace normalised,
in the visible text of every relevant page; a `fact` occurs on the first relevant
page; at least 100 questions per set. Grounded sets: 50 fact questions whose fact
occurs on their page and 20 unanswerable ones.

Visible text: PostgreSQL pages without the navigation header/footer, Python pages'
`div.body` element, Rust pages' `main`; scripts and styles dropped, tags removed,
entities unescaped.
"""
import html
import json
import os
import re
import subprocess
import sys

_SCRIPT = re.compile(r"<(script|style|noscript)\b.*?</\1\s*>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_WS = re.compile(r"\s+")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOTS = {
    "postgres": "/usr/share/doc/postgresql-doc-15/html",
    "python": "/usr/share/doc/python3.11/html",
}


def rust_root():
    env = os.environ.get("RUST_DOCS")
    if env:
        return env
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True,
                             text=True, check=True).stdout.strip()
    return os.path.join(sysroot, "share", "doc", "rust", "html")


def norm(s):
    return _WS.sub(" ", s).strip().lower()


def visible(path, corpus):
    raw = open(path, encoding="utf-8", errors="replace").read()
    raw = _SCRIPT.sub(" ", raw)
    if corpus == "postgres":
        raw = re.sub(r'<div class="navheader">.*?</div>', " ", raw, flags=re.S)
        raw = re.sub(r'<div class="navfooter">.*', " ", raw, flags=re.S)
    elif corpus == "python":
        m = re.search(r'<div class="body" role="main">(.*?)<div class="sphinxsidebar"', raw, re.S)
        if m:
            raw = m.group(1)
    else:
        m = re.search(r"<main\b[^>]*>(.*)</main\s*>", raw, re.S | re.I)
        if m:
            raw = m.group(1)
    return norm(html.unescape(_TAG.sub("", raw)).replace("\u00b6", ""))


def main():
    errors = []
    cache = {}

    def text(corpus, root, page):
        key = (corpus, page)
        if key not in cache:
            cache[key] = visible(os.path.join(root, page), corpus)
        return cache[key]

    roots = dict(ROOTS, rust=rust_root())
    for corpus in ("postgres", "python"):
        root = roots[corpus]
        path = os.path.join(HERE, "sets", f"{corpus}.jsonl")
        ids, questions, splits = set(), set(), {"dev": 0, "test": 0}
        lines = [l for l in open(path, encoding="utf-8") if l.strip()]
        for n, line in enumerate(lines, 1):
            where = f"{corpus}.jsonl:{n}"
            try:
                q = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(f"{where}: bad JSON: {e}")
                continue
            if q["id"] in ids:
                errors.append(f"{where}: duplicate id {q['id']}")
            ids.add(q["id"])
            if norm(q["question"]) in questions:
                errors.append(f"{where}: duplicate question")
            questions.add(norm(q["question"]))
            if q.get("split") not in splits:
                errors.append(f"{where}: split must be dev or test")
            else:
                splits[q["split"]] += 1
            hints = q.get("page_hints", {})
            for page in q["relevant"]:
                full = os.path.join(root, page)
                if not os.path.isfile(full):
                    errors.append(f"{where}: {page} does not exist")
                    continue
                phrase = hints.get(page, q["answer_hint"])
                if norm(phrase) not in text(corpus, root, page):
                    errors.append(f"{where}: {phrase!r} not in {page}")
            fact = q.get("fact")
            if fact and q["relevant"] and norm(fact) not in text(corpus, root, q["relevant"][0]):
                errors.append(f"{where}: fact {fact!r} not in {q['relevant'][0]}")
        if len(lines) < 100:
            errors.append(f"{corpus}.jsonl: {len(lines)} questions, need at least 100")
        if not splits["dev"] or not splits["test"]:
            errors.append(f"{corpus}.jsonl: an empty split {splits}")
        print(f"{corpus}: {len(lines)} questions ({splits['dev']} dev, {splits['test']} test)")

    for corpus in ("rust", "postgres", "python"):
        root = roots[corpus]
        path = os.path.join(HERE, "sets", f"grounded-{corpus}.jsonl")
        facts = unanswerable = 0
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            if not line.strip():
                continue
            g = json.loads(line)
            where = f"grounded-{corpus}.jsonl:{n}"
            if g.get("unanswerable"):
                unanswerable += 1
                continue
            facts += 1
            if norm(g["fact"]) not in text(corpus, root, g["page"]):
                errors.append(f"{where}: fact {g['fact']!r} not in {g['page']}")
        if facts != 50 or unanswerable != 20:
            errors.append(f"grounded-{corpus}.jsonl: {facts} facts, {unanswerable} unanswerable")
        print(f"grounded-{corpus}: {facts} fact questions, {unanswerable} unanswerable")

    for e in errors:
        print(e)
    print("OK" if not errors else f"{len(errors)} failures")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
