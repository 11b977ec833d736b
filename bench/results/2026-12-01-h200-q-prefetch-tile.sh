#!/usr/bin/env bash
# -q-prefetch.sh's L2 prefetch of a `_q` block's next rounds, asked only where a block starts a
# tile (before its first loads), not inside the chunk loop (where it made the kernels spill),
# 8 rounds ahead: for every `_q` GEMV, or only for the one-row ones (linear_q: o_proj and down,
# whose 16-row tile is 3-5 rounds of one block; lm_head_q). Same shape, formats and benches.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee $OUT/q-prefetch-tile.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
V0="Q_PREFETCH=0"; V1="Q_PREFETCH=8"; V2="Q_PREFETCH=8 Q_PREFETCH_ROWS1_ONLY=1"
pids=""
for q in q4_k q8_0; do for v in 0 1 2; do
  eval "d=\$V$v"; LLMC_EXPERIMENT_DEFINES="$d" .bin/llmc compile /tmp/w/m -o /tmp/w/$q-v$v.plan --quantize $q --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
done; done
wait $pids
bench() { echo "[$1] $(timeout 60 .bin/llmc bench $2 --prompt-len $3 --gen 128 --reps 2 2>&1 | head -1 | cut -c1-70)"; }
for round in 1 2; do for q in q4_k q8_0; do for v in 0 1 2; do eval "d=\$V$v"; bench "$q $d, 32, r$round" /tmp/w/$q-v$v.plan 32; done; done; done
for q in q4_k q8_0; do for v in 0 1 2; do eval "d=\$V$v"; bench "$q $d, 1024" /tmp/w/$q-v$v.plan 1024; done; done
