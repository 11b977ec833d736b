#!/usr/bin/env bash
# The one device run, from the repo root on a machine with an NVIDIA GPU, python3 with torch and
# transformers, and no Rust (nothing is built here):
#   1. the CUDA backend against the CPU executor on every fixture, and compute-sanitizer memcheck,
#   2. bench/verify_full_scale.py: llmc against transformers on random full-size Qwen2.5-1.5B,
#      Qwen3-1.7B and Llama-3.2-3B (logits after the prompt and after 16 steps, 64 greedy tokens),
#   3. llmc bench on the Qwen2.5-1.5B shape: prompt 32 and 1024, 128 new tokens,
#   4. with LLMC_GGUF_PARTS (a folder of the real model's GGUF in pieces): bench/real_model_gpu.sh,
#   5. bench/transformers_baseline.py: transformers eager and static cache + torch.compile, same shape,
#   6. OUT/bench.md: the three side by side, with the verification table.
# Usage: bash bench/run_all.sh BIN_DIR [OUT_DIR]   (OUT_DIR defaults to $OUT)
# BIN_DIR holds `llmc` (cargo build --release) and, optionally, the `cuda_vs_cpu`, `cuda_faults`
# and `serve` test binaries (cargo test --release --no-run --test ...) with a file BUILT_AT naming the checkout
# they were built in (their fixtures are found there), and a file COMMIT with the commit built.
# VERIFY_ARGS and BASELINE_ARGS are appended to those scripts' arguments (local checks: --layers 2).
# Total time on an H100: about 6 minutes; each stage has a time limit so that the whole run
# ends within 9.5 minutes and what was measured is always written.
set -uo pipefail
BIN=$(realpath "${1:?BIN_DIR}")
LOGS=${2:-${OUT:?OUT_DIR or \$OUT}}
mkdir -p "$LOGS" && LOGS=$(realpath "$LOGS")
HERE=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
DEADLINE=${RUN_ALL_SECONDS:-570}
WORK=${WORK:-/tmp/llmc-run-all}
mkdir -p "$WORK"
status=0
left() { echo $(( DEADLINE - SECONDS )); }
# At most 8 files come back from $OUT: run_all.log (everything printed), bench.md, llmc_bench.json,
# baseline.json, verify.json, verify.md, verify.log, real_model.log.
exec > >(tee "$LOGS/run_all.log") 2>&1
stage() { echo; echo "=== [$SECONDS s] $*"; }
{
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "command: bash bench/run_all.sh $*"
echo "commit: $(cat "$BIN/COMMIT" 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,compute_cap,driver_version,clocks.max.sm,memory.total --format=csv,noheader
python3 -c 'import torch, transformers; print("python", __import__("sys").version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__)'
} 2>&1 | tee "$WORK/env.txt"
SM=sm_$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)

stage "1. correctness: CUDA vs CPU executor on the fixtures; GPU faults; llmc serve's client tests; memcheck"
BUILT_AT=${LLMC_BUILT_AT:-$(cat "$BIN/BUILT_AT" 2>/dev/null || echo /work/main)}
[ -e "$BUILT_AT" ] || { mkdir -p "$(dirname "$BUILT_AT")" && ln -s "$PWD" "$BUILT_AT"; }
for test in cuda_vs_cpu cuda_faults; do
  if [ -x "$BIN/$test" ]; then
    timeout 120 "$BIN/$test" --ignored --nocapture --test-threads 1 || status=1
  else
    echo "no $test test binary in $BIN: skipped"
  fi
done
# llmc serve against the openai client on a GPU plan (tests/serve.rs), where the client is
# importable: the GPU machine has no PyPI, so its wheels travel in .whl, and the test binary runs
# the llmc it was built beside, so target/release/llmc travels too (the commands are in
# bench/results/2026-11-30-h200-serve-tests.sh).
if [ -x "$BIN/serve" ] && python3 -c "import openai" 2>/dev/null; then
  LLMC_SERVE_TEST_TARGET=$SM timeout 240 "$BIN/serve" --test-threads 1 || status=1
else
  echo "no serve test binary in $BIN or no openai package: llmc serve's client tests skipped"
fi
"$BIN/llmc" compile tests/fixtures/qwen3_untied -o "$WORK/qwen3_untied.plan" --target "$SM" --max-seq-len 64
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN/llmc" run "$WORK/qwen3_untied.plan" --prompt "hello world" --max-tokens 24 || status=1

stage "2. llmc vs transformers on full-size random models"
timeout 240 python3 "$HERE/verify_full_scale.py" --llmc "$BIN/llmc" --out "$LOGS" --work "$WORK" --keep qwen2.5-1.5b ${VERIFY_ARGS:-} 2>&1 \
  | grep -v "Writing model shards\|Loading weights" || status=1

stage "3. llmc bench, Qwen2.5-1.5B shape"
PLAN=$WORK/qwen2.5-1.5b/model.plan
if [ ! -f "$PLAN" ]; then  # verification failed before keeping its plan: make one
  python3 "$HERE/make_random_qwen.py" "$WORK/qwen2.5-1.5b/model" 2>&1 | tail -1
  "$BIN/llmc" compile "$WORK/qwen2.5-1.5b/model" -o "$PLAN" --target "$SM" 2>&1 | tail -1
fi
timeout 60 "$BIN/llmc" bench "$PLAN" --prompt-len 32 --gen 128  # warm-up run, printed
timeout 60 "$BIN/llmc" bench "$PLAN" --prompt-len 32 --gen 128 --json > "$WORK/bench_32.json" || status=1
timeout 60 "$BIN/llmc" bench "$PLAN" --prompt-len 1024 --gen 128 --json > "$WORK/bench_1024.json" || status=1
cat "$WORK/bench_32.json" "$WORK/bench_1024.json"
rm -rf "$WORK/qwen2.5-1.5b"

stage "4. the real model (GGUF) on this GPU"
if [ -n "${LLMC_GGUF_PARTS:-}" ]; then
  timeout 180 bash "$HERE/real_model_gpu.sh" "$BIN" "$LLMC_GGUF_PARTS" > "$LOGS/real_model.log" 2>&1 || status=1
  cat "$LOGS/real_model.log"
else
  echo "LLMC_GGUF_PARTS not set: skipped"
fi

stage "5. transformers baselines (budget $(( $(left) - 20 )) s)"
timeout $(( $(left) - 20 )) python3 "$HERE/transformers_baseline.py" --out "$LOGS/baseline.json" ${BASELINE_ARGS:-} || status=1

stage "6. $LOGS/bench.md"
python3 - "$LOGS" "$WORK" <<'EOF' || status=1
import json, sys
from pathlib import Path
d, work = Path(sys.argv[1]), Path(sys.argv[2])
def load(path):
    try:
        return json.loads(path.read_text())
    except Exception as e:
        return {"error": f"{path.name}: {e}"}
b32, b1024, base = load(work / "bench_32.json"), load(work / "bench_1024.json"), load(d / "baseline.json")
(d / "llmc_bench.json").write_text(json.dumps({"prompt_32": b32, "prompt_1024": b1024}, indent=1))
eager, static, meta = base.get("eager", {}), base.get("static_compile", {}), base.get("meta", {})
bw = b32.get("copy_bandwidth_gb_s")
wb = b32.get("weight_bytes")
def pct(ms):  # one roofline for all: llmc's weight bytes over llmc's measured copy bandwidth
    return 100 * (wb / (bw * 1e9) * 1e3) / ms if ms and bw and wb else None
def f(x, p=2):
    return "n/a" if x is None else (f"{x:.{p}f}" if isinstance(x, float) else str(x))
P, L = str(meta.get("prompt_len", 32)), str(meta.get("long_prompt", 1024))
cols = [
    ("llmc (one CUDA graph per token)", b32.get("ms_per_token"), b32.get("ttft_ms"), b1024.get("ttft_ms"), b32.get("kernels_per_token")),
    ("transformers eager (sdpa, DynamicCache)", eager.get("ms_per_token"), eager.get("ttft_ms", {}).get(P), eager.get("ttft_ms", {}).get(L), eager.get("kernels_per_token")),
    ("transformers StaticCache + torch.compile (reduce-overhead)", static.get("ms_per_token"), static.get("ttft_ms", {}).get(P), static.get("ttft_ms", {}).get(L), static.get("kernels_per_token")),
]
env = (work / "env.txt").read_text().strip().splitlines()
out = ["# llmc bench vs transformers, Qwen2.5-1.5B shape (random weights), bf16, batch 1, prompt 32, 128 new tokens", ""]
out += [f"- {line}" for line in env]
out += [f"- roofline: {f(wb)} weight bytes / {f(bw, 0)} GB/s device-to-device copy bandwidth (read + written, measured by llmc bench)"
        f" = {f(wb / (bw * 1e9) * 1e3 if wb and bw else None, 3)} ms/token; torch's own copy measurement: {f(meta.get('copy_bandwidth_gb_s'), 0)} GB/s",
        "- ms/token and tok/s count the 127 tokens after the first; TTFT is the whole prompt plus the first token"
        " (llmc: batched prefill, tensor-core GEMMs, in chunks of up to 512 tokens; transformers: one prefill forward + argmax, eager in both transformers columns)",
        "- kernels per token: llmc's graph nodes; transformers: CUDA kernels per decode step in a torch.profiler trace", ""]
out += ["| | " + " | ".join(c[0] for c in cols) + " |", "|---|---|---|---|"]
rows = [
    ("ms/token", [f(c[1], 3) for c in cols]),
    ("tok/s", [f(1e3 / c[1] if c[1] else None, 1) for c in cols]),
    ("% of bandwidth roofline", [f(pct(c[1]), 1) for c in cols]),
    ("TTFT, prompt 32 (ms)", [f(c[2], 1) for c in cols]),
    ("TTFT, prompt 1024 (ms)", [f(c[3], 1) for c in cols]),
    ("kernels per token", [f(c[4], 0) for c in cols]),
]
out += [f"| {name} | " + " | ".join(v) + " |" for name, v in rows]
for name, src in (("llmc bench 32", b32), ("llmc bench 1024", b1024), ("transformers eager", eager), ("transformers static+compile", static)):
    errs = {k: v for k, v in src.items() if "error" in k}
    if errs:
        out += ["", f"{name}: " + json.dumps(errs)[:1500]]
if "compile_s" in static:
    out += ["", f"torch.compile warm-up (compile + CUDA graph capture): {static['compile_s']:.1f} s, fullgraph={static.get('fullgraph')}"]
verify = d / "verify.md"
out += ["", "## llmc vs transformers on full-size random models (bench/verify_full_scale.py)", "",
        verify.read_text().strip() if verify.exists() else "verify.md is missing: see verify.log"]
(d / "bench.md").write_text("\n".join(out) + "\n")
print("\n".join(out))
EOF
echo "=== done in $SECONDS s, status $status"
exit $status
