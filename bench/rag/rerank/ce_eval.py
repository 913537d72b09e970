"""Re-ranking variants from ce_score.py's scores, chosen by the mean dev nDCG@10 and
reported on the test halves. usage: ce_eval.py CANDIDATES.jsonl SCORES.json"""
import json, sys, math
from metrics import load, table
rows = load(sys.argv[1])
S = json.load(open(sys.argv[2]))["scores"]
rows = [r for r in rows if r["corpus"] + "/" + r["id"] in S]
CORP = ["rust", "postgres", "python"]

def pages_orig(r):
    return [c["page"] for c in r["candidates"]]

def ce_topN(N):
    def f(r):
        s = S[r["corpus"] + "/" + r["id"]]; C = r["candidates"]
        head = sorted(range(min(N, len(C))), key=lambda i: -s[i])   # stable on ties
        return [C[i]["page"] for i in head] + [c["page"] for c in C[N:]]
    return f

def page_lists(r, N):
    """orig page order (first appearance among all candidates) and page CE max over the top N chunks"""
    s = S[r["corpus"] + "/" + r["id"]]; C = r["candidates"]
    orig = []
    for c in C:
        if c["page"] not in orig: orig.append(c["page"])
    best = {}
    for i, c in enumerate(C[:N]):
        best[c["page"]] = max(best.get(c["page"], -1e9), s[i])
    return orig, best

def fusion(N, k, w):
    def f(r):
        orig, best = page_lists(r, N)
        ce_rank = {p: i + 1 for i, p in enumerate(sorted(best, key=lambda p: -best[p]))}
        big = len(orig) + 1
        sc = {p: w / (k + ce_rank.get(p, big)) + (1 - w) / (k + i + 1) for i, p in enumerate(orig)}
        return sorted(orig, key=lambda p: -sc[p])   # stable: ties keep original order
    return f

def page_sum(N, bonus):
    """page score = max sigmoid prob + bonus * sum of its other chunks' probs (top N chunks)"""
    def f(r):
        s = S[r["corpus"] + "/" + r["id"]]; C = r["candidates"]
        probs = {}
        for i, c in enumerate(C[:N]):
            probs.setdefault(c["page"], []).append(1 / (1 + math.exp(-s[i])))
        sc = {p: max(v) + bonus * (sum(v) - max(v)) for p, v in probs.items()}
        orig = []
        for c in C:
            if c["page"] not in orig: orig.append(c["page"])
        return sorted(orig, key=lambda p: -sc.get(p, -1))
    return f

variants = {"baseline (candidate order)": pages_orig}
for N in (10, 20, 30):
    variants[f"CE top{N} (page = max chunk)"] = ce_topN(N)
for N in (10, 20, 30):
    for k in (20, 60):
        for w in (0.3, 0.5, 0.7):
            variants[f"fusion top{N} k={k} w={w}"] = fusion(N, k, w)
for N in (30,):
    for b in (0.05, 0.2):
        variants[f"CE top{N} page max+{b}*sum"] = page_sum(N, b)

res = {name: table(rows, f) for name, f in variants.items()}
def mean_dev(t): return sum(t[(c, "dev")][2] for c in CORP if (c, "dev") in t) / len([c for c in CORP if (c, "dev") in t])
def mean_test(t): return sum(t[(c, "test")][2] for c in CORP if (c, "test") in t) / len([c for c in CORP if (c, "test") in t])
ranked = sorted(res, key=lambda n: -mean_dev(res[n]))
print(f"scores: {sys.argv[2]} ({len(rows)} questions)\n")
print("| variant | " + " | ".join(f"{c} dev" for c in CORP) + " | mean dev | " + " | ".join(f"{c} test" for c in CORP) + " | mean test |")
print("| --- |" + " ---: |" * 8)
for n in ranked:
    t = res[n]
    print(f"| {n} | " + " | ".join(f"{t[(c,'dev')][2]:.1f}" for c in CORP) + f" | {mean_dev(t):.1f} | " +
          " | ".join(f"{t[(c,'test')][2]:.1f}" for c in CORP) + f" | {mean_test(t):.1f} |")
TARGET = {"rust": 93.9, "postgres": 89.0, "python": 88.8}
for n in ["baseline (candidate order)"] + [x for x in ranked if x != "baseline (candidate order)"][:5]:
    t = res[n]
    print(f"\n#### {n}\n\n| corpus | split | n | recall@5 | MRR@10 | nDCG@10 | test target |\n| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for sp in ("dev", "test"):
        for c in CORP:
            r5, mrr, nd, cnt = t[(c, sp)]
            tg = "" if sp == "dev" else (f"≥{TARGET[c]}: " + ("MET" if nd >= TARGET[c] else f"no ({nd-TARGET[c]:+.1f})"))
            print(f"| {c} | {sp} | {cnt} | {r5:.1f} | {mrr:.1f} | {nd:.1f} | {tg} |")
