"""Medians per side and ratios (ours / peer) from run.sh's results.jsonl, as Markdown,
over the valid rounds only: a round is invalid when any side's 1-minute load average,
before or after it ran, is above MAX_LOAD (default 2.5), or when the hypervisor stole
more than MAX_STEAL (default 0.02) of the CPU time while any side ran.

    python3 bench/llm/summarize.py RESULTS.jsonl [MAX_LOAD] [MAX_STEAL]
"""

import json
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from steal import valid_rounds  # noqa: E402  (bench/steal.py: the rule every bench script shares)


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    max_load = float(sys.argv[2]) if len(sys.argv) > 2 else 2.5
    max_steal = float(sys.argv[3]) if len(sys.argv) > 3 else 0.02
    rows = valid_rounds(rows, max_load, max_steal)
    if not rows:
        print("no valid round: no figures")
        return
    by = {}
    for row in rows:
        by.setdefault(row["label"], []).append(row)

    def med(label, key):
        values = [r[key] for r in by.get(label, []) if r.get(key) is not None]
        return statistics.median(values) if values else float("nan")

    rounds = max(len(v) for v in by.values())
    kernels = sorted({r.get("kernels", "best") for r in rows})
    print(f"{rounds} valid rounds; our kernels: {', '.join(kernels)}")
    # What the embedding side reported it ran on (AMX tiles, AVX-VNNI).
    reports = sorted({r["kernel_report"] for r in rows if r.get("kernel_report")})
    for report in reports:
        print(f"  ours reported: {report}")
    print()

    if "embed-ours" in by:
        embeddings(by, med)
    chat(by, med)


def embeddings(by, med):
    print("| embeddings (256 chunks, batch 16) | chunks/s (median) | chunks per CPU-second | peak RSS MB |")
    print("|---|---|---|---|")
    for label, name in [
        ("embed-ours", "LocalEmbedder, our encoder"),
        ("embed-candle", "LocalEmbedder, candle f32 BERT"),
        ("embed-st", "sentence-transformers (torch CPU)"),
    ]:
        if label in by:
            cps = [r["chunks"] / r["cpu_secs"] for r in by[label]]
            print(
                f"| {name} | {med(label, 'chunks_per_s'):.1f} | {statistics.median(cps):.1f} "
                f"| {med(label, 'time_maxrss_mb'):.0f} |"
            )
    ratio = med("embed-ours", "chunks_per_s") / med("embed-st", "chunks_per_s")
    ratios = [
        o["chunks_per_s"] / s["chunks_per_s"] for o, s in zip(by["embed-ours"], by["embed-st"])
    ]
    print(
        f"\nours / sentence-transformers: {ratio:.2f}x (per round: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + ")\n"
    )


def chat(by, med):
    if "chat-ours" in by and "chat-llama" in by:
        print("| chat (same GGUF, same prompt tokens) | prompt tokens | TTFT s | prefill tok/s | decode tok/s | tokens | peak RSS MB |")
        print("|---|---|---|---|---|---|---|")
        for label, name in [
            ("chat-ours", "LocalChatModel, our llama forward"),
            ("chat-qmatmul", "LocalChatModel, fallback forward on candle's QMatMul"),
            ("chat-candle", "LocalChatModel, candle's quantized_llama"),
            ("chat-llama", "llama-cpp-python"),
        ]:
            if label not in by:
                continue
            print(
                f"| {name} | {med(label, 'prompt_tokens'):.0f} | {med(label, 'ttft_secs'):.2f} "
                f"| {med(label, 'prefill_tok_s'):.0f} | {med(label, 'decode_tok_s'):.1f} "
                f"| {med(label, 'completion_tokens'):.0f} | {med(label, 'time_maxrss_mb'):.0f} |"
            )
        print()
        for key, name in [("prefill_tok_s", "prefill"), ("decode_tok_s", "decode")]:
            per = [o[key] / l[key] for o, l in zip(by["chat-ours"], by["chat-llama"])]
            print(
                f"{name}: ours / llama.cpp {med('chat-ours', key) / med('chat-llama', key):.2f}x "
                "(per round: " + ", ".join(f"{r:.2f}" for r in per) + ")"
            )
        if "chat-candle" in by:
            per = [o["decode_tok_s"] / c["decode_tok_s"] for o, c in zip(by["chat-ours"], by["chat-candle"])]
            print(
                f"decode, our llama forward / candle's: "
                f"{med('chat-ours', 'decode_tok_s') / med('chat-candle', 'decode_tok_s'):.2f}x "
                "(per round: " + ", ".join(f"{r:.2f}" for r in per) + ")"
            )
        print(
            f"time to first token: ours / llama.cpp "
            f"{med('chat-ours', 'ttft_secs') / med('chat-llama', 'ttft_secs'):.2f}x (lower is better)"
        )


if __name__ == "__main__":
    main()
