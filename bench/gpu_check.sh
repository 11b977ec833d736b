#!/usr/bin/env bash
# One-shot GPU check, run from the repo root on a machine with an NVIDIA GPU (no Rust needed):
#   1. the CUDA backend against the CPU executor on every fixture (tests/cuda_vs_cpu.rs),
#   2. compute-sanitizer memcheck over a short generation,
#   3. the bench on a random full-size Qwen2.5-1.5B made by transformers,
#   4. per-kernel times of one decode step, and attention in detail, under Nsight Compute.
# Usage: bench/gpu_check.sh BIN_DIR LOG_DIR (from the repo root), where BIN_DIR holds `llmc` and the `cuda_vs_cpu`
# test binary built with `cargo test --release --no-run --test cuda_vs_cpu`.
set -uo pipefail
BIN=$(realpath "${1:?BIN_DIR}")
LOGS=$(realpath "${2:?LOG_DIR}")
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
SM=sm_$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
nvidia-smi --query-gpu=name,compute_cap,driver_version,clocks.max.sm --format=csv | tee "$LOGS/gpu.txt"
status=0

# The test binary finds the fixtures under the checkout it was built in (LLMC_BUILT_AT).
BUILT_AT=${LLMC_BUILT_AT:-/work/wt-cuda}
[ -e "$BUILT_AT" ] || { mkdir -p "$(dirname "$BUILT_AT")" && ln -s "$PWD" "$BUILT_AT"; }
"$BIN/cuda_vs_cpu" --ignored --nocapture --test-threads 1 2>&1 | tee "$LOGS/correctness.log" || status=1

"$BIN/llmc" compile tests/fixtures/qwen3_untied -o /tmp/qwen3_untied.plan --target "$SM" --max-seq-len 64
compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN/llmc" run /tmp/qwen3_untied.plan --prompt "hello world" --max-tokens 24 2>&1 | tail -20 | tee "$LOGS/memcheck.log" || status=1

python3 "$(dirname "$0")/make_random_qwen.py" /tmp/qwen15 2>&1 | tail -2 | tee "$LOGS/bench.log"
"$BIN/llmc" compile /tmp/qwen15 -o /tmp/qwen15.plan --target "$SM" 2>&1 | tee -a "$LOGS/bench.log"
for run in 1 2; do "$BIN/llmc" bench /tmp/qwen15.plan --prompt-len 32 --gen 128 2>&1 | tee -a "$LOGS/bench.log"; done
"$BIN/llmc" bench /tmp/qwen15.plan --prompt-len 1024 --gen 128 2>&1 | tee -a "$LOGS/bench.log"
"$BIN/llmc" bench /tmp/qwen15.plan --prompt-len 32 --gen 128 --json > "$LOGS/bench.json" || status=1
"$BIN/llmc" run /tmp/qwen15.plan --prompt "hi" --max-tokens 8 --json 2>&1 | tee -a "$LOGS/bench.log"
# Decode speed by sampling mode (the sampler runs inside the graph in every mode).
ids=$(seq -s, 100 131)
for mode in "--temperature 0" "--temperature 0.8 --top-p 0.95" "--temperature 0.8 --top-k 40 --top-p 0.95"; do
  echo "sampling: $mode" | tee -a "$LOGS/bench.log"
  # shellcheck disable=SC2086
  "$BIN/llmc" run /tmp/qwen15.plan --prompt-ids "$ids" --max-tokens 256 --ignore-eos $mode --json 2>&1 | tail -1 \
    | python3 -c "import json, sys; print({k: v for k, v in json.loads(sys.stdin.read()).items() if not isinstance(v, list)})" 2>&1 \
    | tee -a "$LOGS/bench.log" || status=1
done

# One decode step's kernels (the second graph replay), timed without clock locking.
timeout 240 ncu --clock-control none --graph-profiling node --launch-skip 201 --launch-count 201 \
  --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed --csv \
  "$BIN/llmc" bench /tmp/qwen15.plan --prompt-len 1 --gen 3 > "$LOGS/ncu.csv" 2> "$LOGS/ncu.err"
# Where one layer's attention spends its time (the first kernel profiled is layer 0's at pos 1).
timeout 120 ncu --clock-control none -k attention --launch-skip 28 --launch-count 1 --section SpeedOfLight \
  --section Occupancy --section LaunchStats --section WarpStateStats \
  "$BIN/llmc" bench /tmp/qwen15.plan --prompt-len 1 --gen 3 > "$LOGS/ncu_attention.txt" 2>&1
exit $status
