import json, math
from collections import defaultdict

"""Page-level recall@5, MRR@10 and nDCG@10, as bench/rag/src/eval.rs `score` computes them."""


def load(path):
    return [json.loads(l) for l in open(path)]

def page_ranking(pages, cut=10):
    seen, out = set(), []
    for p in pages:
        if p not in seen:
            seen.add(p); out.append(p)
            if len(out) == cut: break
    return out

def metrics(ranking, gold):
    gold = set(gold)
    top5 = ranking[:5]
    r5 = len(gold & set(top5)) / len(gold)
    mrr = 0.0
    for i, p in enumerate(ranking[:10]):
        if p in gold: mrr = 1.0 / (i + 1); break
    dcg = sum(1 / math.log2(i + 2) for i, p in enumerate(ranking[:10]) if p in gold)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(len(gold), 10)))
    return r5, mrr, dcg / idcg

def table(rows, order_fn):
    """rows: list of question dicts; order_fn(row) -> list of page ids in ranked order (chunk-level ok)."""
    acc = defaultdict(lambda: [0.0, 0.0, 0.0, 0])
    for r in rows:
        m = metrics(page_ranking(order_fn(r)), r["relevant"])
        a = acc[(r["corpus"], r["split"])]
        for i in range(3): a[i] += m[i]
        a[3] += 1
    return {k: (100 * v[0] / v[3], 100 * v[1] / v[3], 100 * v[2] / v[3], v[3]) for k, v in acc.items()}
