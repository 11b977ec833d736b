#!/usr/bin/env bash
# Not kept. The next layer's q/k/v folded into the fused MLP kernel (#13; kernels/mlp.cu step 4, a grid
# barrier on monotonic counters instead of a kernel boundary), against the same binary with
# LLMC_FUSE_QKV=0 (the fused MLP's new counters, q/k/v as their own kernel), interleaved, random
# Qwen2.5-1.5B shape, bf16, 128 tokens after 32 and 1,024; then a traced step of each, the GPU
# tests and compute-sanitizer on a fixture (unless TESTS=0).
# .bin: llmc, cuda_vs_cpu, cuda_faults, COMMIT.
# Code: 2026-12-02-h200-mlp-qkv-fold.patch on 80e9044 (was fd6a082). Runs 2 and 3 in the log used a
# build with MLP_SPIN_DIAG (bounded spins that print the counters and trap) and 'llmc bench --prompt-len
# 32 --gen 64 --reps 1' with LLMC_FUSE_QKV=0 and 1 under 'timeout -s KILL 40'.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/mlp-qkv.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
.bin/llmc compile /tmp/w/m -o /tmp/w/bf16.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" .bin/llmc compile /tmp/w/m -o /tmp/w/bf16-traced.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
for r in 1 2 3; do for q in 1 0; do
  echo "[LLMC_FUSE_QKV=$q, round $r] $(LLMC_FUSE_QKV=$q timeout 60 .bin/llmc bench /tmp/w/bf16.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-60 | tr '\n' ' ')"
done; done
for q in 1 0; do
  echo "[LLMC_FUSE_QKV=$q traced, prompt 32] $(LLMC_FUSE_QKV=$q timeout 60 .bin/llmc bench /tmp/w/bf16-traced.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/qkv$q-32.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
  python3 bench/graph_trace_summary.py $OUT/qkv$q-32.json --launches 5 && gzip -9 $OUT/qkv$q-32.json
done
[ "${TESTS:-1}" = 0 ] && exit 0
echo "== tests"
timeout 240 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |panicked|result|Graph" | head -60
timeout 30 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
