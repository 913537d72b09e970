"""The sentence-transformers side of the embedding benchmark: all-MiniLM-L6-v2 from
the same wheel's files, CPU torch on N threads, the same chunks and batch size as
embed_speed, normalised vectors. Prints one JSON line shaped like embed_speed's.

    python st_embed.py MODEL_DIR CHUNKS.jsonl [BATCH] [THREADS]
"""

import json
import os
import resource
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402


def main():
    model_dir, chunks_path = sys.argv[1], sys.argv[2]
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    torch.set_num_threads(threads)
    chunks = [json.loads(line) for line in open(chunks_path) if line.strip()]

    started = time.perf_counter()
    model = SentenceTransformer(model_dir, device="cpu")
    load_secs = time.perf_counter() - started

    model.encode(chunks[:batch], batch_size=batch, normalize_embeddings=True)
    started = time.perf_counter()
    vectors = model.encode(chunks, batch_size=batch, normalize_embeddings=True)
    secs = time.perf_counter() - started
    assert len(vectors) == len(chunks)
    print(
        json.dumps(
            {
                "side": "sentence-transformers",
                "torch": torch.__version__,
                "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "mkl_instructions": os.environ.get("MKL_ENABLE_INSTRUCTIONS", "best"),
                "chunks": len(chunks),
                "batch_size": batch,
                "max_seq_length": model.max_seq_length,
                "load_secs": load_secs,
                "secs": secs,
                "chunks_per_s": len(chunks) / secs,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
