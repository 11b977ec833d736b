#!/usr/bin/env bash
# `_q` GEMV shapes at 65854a2's kernels: chunks a warp has in flight (Q8_0's Q_BATCH 4 -> 6,
# the K-quants' Q_KBATCH 3 -> 4, compile-time defines) and warps a tile (the host's elements
# of a row a warp: 256 -> 128, twice the warps, or 512, half; an experiment-only environment
# variable, LLMC_Q_WARP_ELEMENTS, in the binary carried, not committed). Qwen2.5-1.5B shape,
# random weights, graph decode, 128 tokens after 32, two interleaved rounds.
# .bin: llmc (65854a2 + the variable).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/q-shape.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
pids=""
for v in "q4_k base" "q8_0 base" "q8_0 Q_BATCH=6" "q4_k Q_KBATCH=4"; do
  set -- $v
  d=""; [ $2 = base ] || d=$2
  LLMC_EXPERIMENT_DEFINES="$d" .bin/llmc compile /tmp/w/m -o /tmp/w/$1-$2.plan --quantize $1 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
done
wait $pids
bench() { echo "[$1 $2 elements ${3:-256}] $(LLMC_Q_WARP_ELEMENTS=${3:-256} timeout 60 .bin/llmc bench /tmp/w/$1-$2.plan --prompt-len 32 --gen 128 --reps 2 2>&1 | grep -E "prompt |rror" | head -1 | cut -c1-80)"; }
for round in 1 2; do
  for q in q4_k q8_0; do bench $q base; bench $q base 128; bench $q base 512; done
  bench q8_0 Q_BATCH=6; bench q4_k Q_KBATCH=4
done
