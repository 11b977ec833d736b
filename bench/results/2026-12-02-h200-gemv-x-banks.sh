#!/usr/bin/env bash
# #13: the bf16 GEMVs' reads of x from shared memory without bank conflicts (fma_batch: lanes
# 4-7 of each eight read their chunk's second half first) against the old order
# (LLMC_EXPERIMENT_DEFINES=GEMV_X_PLAIN=1), random Qwen2.5-1.5B shape, bf16, 128 tokens after 32
# and 1,024, three interleaved rounds; traced once each (trace marks); then the GPU tests.
# .bin: llmc, cuda_vs_cpu, cuda_faults, COMMIT.
# The bank-conflict-free order is not in the tree (slower): 2026-12-02-h200-gemv-x-banks.patch
# (2f9809b) adds it as the default and GEMV_X_PLAIN as the old order.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/gemv-x-banks.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
pids=""
for v in plain banks; do
  d=""; [ $v = plain ] && d="GEMV_X_PLAIN=1"
  LLMC_EXPERIMENT_DEFINES="$d" .bin/llmc compile /tmp/w/m -o /tmp/w/$v.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
  LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1 $d" .bin/llmc compile /tmp/w/m -o /tmp/w/$v-traced.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
done
wait $pids
for r in 1 2 3; do for v in plain banks; do
  echo "[$v, round $r] $(timeout 60 .bin/llmc bench /tmp/w/$v.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep 'prompt ' | cut -c1-60 | tr '\n' ' ')"
done; done
for v in plain banks; do
  echo "[$v traced, prompt 32] $(timeout 60 .bin/llmc bench /tmp/w/$v-traced.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/$v-32.json 2>&1 | grep -E 'prompt |error' | cut -c1-60)"
  python3 bench/graph_trace_summary.py $OUT/$v-32.json --launches 0 && gzip -9 $OUT/$v-32.json
done
echo "== tests"
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |panicked|result" | head -30
timeout 30 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
