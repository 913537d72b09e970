"""The llama.cpp side of the chat benchmark (llama-cpp-python): the same GGUF, the same
prompt token ids as chat_speed wrote, greedy decoding with the same repeat penalty
(1.1 over the last 64 tokens) and token budget, on N threads. Prints one JSON line
shaped like chat_speed's.

    python llama_cpp_chat.py GGUF PROMPT.json [MAX_TOKENS] [THREADS]
"""

import json
import resource
import sys
import time

from llama_cpp import Llama


def main():
    gguf, prompt_path = sys.argv[1], sys.argv[2]
    max_tokens = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    tokens = json.load(open(prompt_path))["tokens"]

    started = time.perf_counter()
    llm = Llama(
        model_path=gguf,
        n_ctx=4096,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        last_n_tokens_size=64,
        verbose=False,
    )
    load_secs = time.perf_counter() - started

    # Warm-up on a short, different prompt, then forget it (no prefix reuse).
    for _ in llm.create_completion(tokens[:16], max_tokens=4, temperature=0.0, stream=True):
        pass
    llm.reset()

    # generate() yields every sampled token, so the count is exact; stop at EOS or
    # the budget as the server does.
    eos = llm.token_eos()
    started = time.perf_counter()
    first = None
    completion = 0
    for token in llm.generate(tokens, temp=0.0, repeat_penalty=1.1, reset=True):
        if first is None:
            first = time.perf_counter()
        if token == eos:
            break
        completion += 1
        if completion >= max_tokens:
            break
    end = time.perf_counter()
    ttft = first - started
    print(
        json.dumps(
            {
                "side": "llama.cpp",
                "load_secs": load_secs,
                "prompt_tokens": len(tokens),
                "completion_tokens": completion,
                "ttft_secs": ttft,
                "prefill_tok_s": len(tokens) / ttft,
                "decode_tok_s": max(completion - 1, 0) / max(end - first, 1e-9),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
