"""Extraction quality on the article-extraction-benchmark (181 pages + ground truth):
agentbase (`agentbase extract --format text`, one process per page) against
trafilatura (PyPI, in-process), same pages, same metric.

Metric (the benchmark's evaluate.py): word 4-gram shingles (tokens = runs of word
characters), per page TP/FP/FN normalised to sum 1, precision and recall averaged over
pages, F1 from the two averages.

    python evaluate.py DATASET_DIR AGENTBASE_BIN [--no-trafilatura]
"""
import gzip
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

TOKEN = re.compile(r"\w+", re.UNICODE)


def shingles(text, n=4):
    toks = TOKEN.findall(text or "")
    out = [tuple(toks[i:i + n]) for i in range(0, max(1, len(toks) - n + 1))]
    return Counter(s for s in out if s)


def match(true, pred):
    t, p = shingles(true), shingles(pred)
    tp = fp = fn = 0.0
    for k in set(t) | set(p):
        tc, pc = t.get(k, 0), p.get(k, 0)
        tp += min(tc, pc)
        fp += max(0, pc - tc)
        fn += max(0, tc - pc)
    s = tp + fp + fn
    return (tp / s, fp / s, fn / s) if s else (0.0, 0.0, 0.0)


def precision(tp, fp, fn):
    if fp == fn == 0:
        return 1.0
    if tp == fp == 0:
        return 0.0
    return tp / (tp + fp)


def recall(tp, fp, fn):
    if fp == fn == 0:
        return 1.0
    if tp == fn == 0:
        return 0.0
    return tp / (tp + fn)


def score(rows):
    p = statistics.mean(precision(*r) for r in rows if r[0] + r[1] > 0)
    r = statistics.mean(recall(*r) for r in rows if r[0] + r[2] > 0)
    return p, r, 2 * p * r / (p + r)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    data, binary = Path(sys.argv[1]), sys.argv[2]
    with_traf = "--no-trafilatura" not in sys.argv
    truth = json.loads((data / "ground-truth.json").read_text())
    ours, theirs = [], []
    t_ours = t_theirs = 0.0
    if with_traf:
        import trafilatura
    with tempfile.TemporaryDirectory() as tmp:
        for key, entry in truth.items():
            raw = gzip.decompress((data / "html" / f"{key}.html.gz").read_bytes())
            page = Path(tmp) / "page.html"
            page.write_bytes(raw)
            start = time.perf_counter()
            out = subprocess.run(
                [binary, "extract", "--format", "text", "--url", entry.get("url", "http://localhost/"), str(page)],
                capture_output=True, check=True,
            ).stdout.decode("utf-8", "replace")
            t_ours += time.perf_counter() - start
            ours.append(match(entry["articleBody"], out))
            if with_traf:
                html = raw.decode("utf-8", "replace")
                start = time.perf_counter()
                text = trafilatura.extract(html, include_comments=False) or ""
                t_theirs += time.perf_counter() - start
                theirs.append(match(entry["articleBody"], text))
    p, r, f = score(ours)
    print(f"agentbase    precision={p:.4f} recall={r:.4f} F1={f:.4f}  ({len(ours)} pages, {t_ours:.1f}s incl. one process per page)")
    if with_traf:
        p2, r2, f2 = score(theirs)
        print(f"trafilatura  precision={p2:.4f} recall={r2:.4f} F1={f2:.4f}  ({t_theirs:.1f}s in-process)")
        print(f"F1 ratio agentbase/trafilatura = {f / f2:.4f}")


if __name__ == "__main__":
    main()
