#!/usr/bin/env bash
# Experiment (#13): are a bf16 GEMV's preloaded weights still arriving when its wait returns?
# GEMV_WEIGHTS_BEFORE_WAIT (kernels/gemv.cu, LLMC_EXPERIMENT_DEFINES) makes every warp read its
# first batch's registers before the wait, so that the time between "x staged" and "first rows
# summed" (trace marks) is the dot products alone. Random Qwen2.5-1.5B shape, bf16, traced and
# untraced, with and without, 128 tokens after 32 and 1,024, two rounds.
# .bin: llmc, COMMIT.
# GEMV_WEIGHTS_BEFORE_WAIT is not in the tree: apply 2026-12-02-h200-weights-before-wait.patch
# first (it was b9320ed; a first form, an empty asm, emitted nothing for ptxas to wait on).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/weights-before-wait.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
pids=""
for v in base early; do
  d=""; [ $v = early ] && d="GEMV_WEIGHTS_BEFORE_WAIT=1"
  LLMC_EXPERIMENT_DEFINES="$d" .bin/llmc compile /tmp/w/m -o /tmp/w/$v.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
  LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1 $d" .bin/llmc compile /tmp/w/m -o /tmp/w/$v-traced.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
done
wait $pids
for r in 1 2; do for v in base early; do
  echo "[$v untraced, round $r] $(timeout 60 .bin/llmc bench /tmp/w/$v.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep 'prompt ' | cut -c1-60 | tr '\n' ' ')"
done; done
for v in base early; do
  echo "[$v traced, prompt 32] $(timeout 60 .bin/llmc bench /tmp/w/$v-traced.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/$v-32.json 2>&1 | grep -E 'prompt |error' | cut -c1-60)"
  python3 bench/graph_trace_summary.py $OUT/$v-32.json --launches 5 && gzip -9 $OUT/$v-32.json
done
