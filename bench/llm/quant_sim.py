#!/usr/bin/env python3
"""How much integer quantisation of MiniLM's linear layers costs the embeddings.

Simulates, in torch, the rounding the AVX2 kernels of `crates/llm/src/fast_bert/avx2.rs`
apply (weights per output column, activations per row and k block, symmetric or around
a zero point) on chosen layers, and prints the lowest cosine against full precision
over the reference sentences of the llm tests and over chunks of the Rust Book.

    /var/cache/agentbase-bench-venv-llm-st/bin/python bench/llm/quant_sim.py \
        [chunks.jsonl] [model dir]

Needs the sentence-transformers venv that `bench/llm/run.sh` creates, and the chunks
its `make_chunks.py` writes (default /tmp/agentbase-bench-llm/chunks.jsonl).
"""
import json
import pathlib
import sys

import torch
from sentence_transformers import SentenceTransformer

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHUNKS = sys.argv[1] if len(sys.argv) > 1 else "/tmp/agentbase-bench-llm/chunks.jsonl"
MODEL = sys.argv[2] if len(sys.argv) > 2 else "/var/cache/agentbase-models/all-minilm-l6-v2"

# (activation levels, weight levels, around a zero point, k block): what each width does.
INT16 = (16383, 511, False, 256)
U8_I8 = (255, 127, True, 512)
U7_I8 = (127, 127, True, 512)
U8_I7 = (255, 63, True, 512)
# 8-bit activations with a scale and zero point per row and narrower k block.
U8_I8_128 = (255, 127, True, 128)
U8_I8_32 = (255, 127, True, 32)


def quantized(linear, a_max, b_max, zero_point, block):
    w = linear.weight.data
    scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / b_max
    wq = (w / scale).round().clamp(-b_max, b_max) * scale

    def forward(x):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        out = torch.zeros(x2.shape[0], w.shape[0])
        for k0 in range(0, shape[-1], block):
            xs = x2[:, k0:k0 + block]
            if zero_point:
                lo = xs.amin(dim=1, keepdim=True).clamp(max=0)
                hi = xs.amax(dim=1, keepdim=True).clamp(min=0)
                step = ((hi - lo) / a_max).clamp(min=1e-12)
                zero = (-lo / step).round()
                xq = (((xs / step).round() + zero).clamp(0, a_max) - zero) * step
            else:
                step = xs.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / a_max
                xq = (xs / step).round().clamp(-a_max, a_max) * step
            out += xq @ wq[:, k0:k0 + block].T
        return (out + linear.bias).reshape(*shape[:-1], w.shape[0])

    return forward


def main():
    torch.set_num_threads(2)
    model = SentenceTransformer(MODEL, device="cpu")
    reference = json.load(open(ROOT / "crates/llm/tests/fixtures/minilm_reference.json"))
    sets = {
        "sentences": reference["sentences"],
        "chunks": [json.loads(line) for line in open(CHUNKS)][:64],
    }
    full = {k: model.encode(v, convert_to_tensor=True, normalize_embeddings=True) for k, v in sets.items()}
    names = {id(m): n for n, m in model.named_modules()}
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    original = {id(m): m.forward for m in linears}

    up = lambda n: "intermediate" in n
    down = lambda n: n.endswith("output.dense") and "attention" not in n
    qkv = lambda n: n.rsplit(".", 1)[-1] in ("query", "key", "value")
    rows = [
        ("none (16-bit)", lambda n: False, U8_I8),
        ("feed-forward first", up, U8_I8),
        ("feed-forward first", up, U7_I8),
        ("feed-forward first", up, U8_I7),
        ("feed-forward both", lambda n: up(n) or down(n), U8_I8),
        ("feed-forward both, k blocks of 128", lambda n: up(n) or down(n), U8_I8_128),
        ("feed-forward both, k blocks of 32", lambda n: up(n) or down(n), U8_I8_32),
        ("qkv and feed-forward first", lambda n: up(n) or qkv(n), U8_I8),
        ("every linear layer", lambda n: True, U8_I8),
    ]
    print("| 8-bit layers | activations / weights | sentences | chunks |")
    print("|---|---|---:|---:|")
    for label, pick, width in rows:
        for m in linears:
            m.forward = quantized(m, *(width if pick(names[id(m)]) else INT16))
        lows = []
        for key, texts in sets.items():
            e = model.encode(texts, convert_to_tensor=True, normalize_embeddings=True)
            lows.append((e * full[key]).sum(1).min().item())
        bits = f"{'u' if width[2] else 's'}{int(width[0]).bit_length()} / i{int(width[1]).bit_length() + 1}"
        if label.startswith("none"):
            bits = "s15 / i10 everywhere"
        print(f"| {label} | {bits} | {lows[0]:.5f} | {lows[1]:.5f} |", flush=True)
        for m in linears:
            m.forward = original[id(m)]


if __name__ == "__main__":
    main()
