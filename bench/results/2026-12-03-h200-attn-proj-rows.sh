#!/usr/bin/env bash
# #13, short-context graph only: (a) attention_proj's blocks project rows instead of columns
# (ATTN_PROJ_ROWS=1: each block of a head's cluster gets the head's d values through distributed
# shared memory and projects hidden / cluster rows of W_o with them, so each output takes one
# reduction a head, 12, not one a block, 48); (b) the fused MLP's grid capped in that graph only
# (LLMC_MLP_BLOCKS 128, 112: -mlp-blocks.log had both faster after 32 tokens, slower after
# 1,024 where the long graph runs). First the fixtures' CUDA-vs-CPU test with (a) compiled in,
# then three interleaved rounds after 32 tokens on the random Qwen2.5-1.5B shape, and traced
# steps of (a) with 132 and 128 blocks. .bin: llmc, cuda_vs_cpu, COMMIT (2cd1241 with
# -attn-proj-rows.patch and -mlp-blocks.patch, LLMC_MLP_BLOCKS there applying to the short-context
# graph only). The first call (15:36 UTC, -attn-proj-rows-test.log) ran the test, which passed
# with (a), and then had no plans to bench ($2 unset); the second (SKIP_TEST=1, 15:37 UTC) ran the
# rest. Result, ms/token after 32: 132 blocks 1.136-1.142, 128 1.116-1.121, 112 1.113-1.121;
# with (a) 1.152-1.156, 1.133-1.139, 1.136-1.140. (a) not kept; (b) kept at 128 (4 SMs spare).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/attn-proj-rows.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
( python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
  for v in "base " "rows ATTN_PROJ_ROWS=1" "trows ATTN_PROJ_ROWS=1 TRACE_BLOCKS=1"; do
    set -- $v
    LLMC_EXPERIMENT_DEFINES="${2:-} ${3:-}" timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/$1.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
  done
  wait $(jobs -p) ) &
[ -n "${SKIP_TEST:-}" ] || { echo "== cuda_vs_cpu fixtures, ATTN_PROJ_ROWS=1 ($(date -u +%T))"
LLMC_EXPERIMENT_DEFINES="ATTN_PROJ_ROWS=1 SPIN_LIMIT=20000000" timeout -s KILL 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 cuda_matches_cpu_on_every_fixture 2>&1 | grep -E "^test |fused below Some|panicked|result|llmc spin" | head -40; }
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for v in "132 base" "128 base" "112 base" "132 rows" "128 rows" "112 rows"; do
    set -- $v
    echo "[blocks $1 $2, round $r] $(LLMC_MLP_BLOCKS=$1 timeout -s KILL 90 .bin/llmc bench /tmp/w/$2.plan --prompt-len 32 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-60 | tr '\n' ' ')"
  done
done
for b in 132 128; do
  echo "[blocks $b rows traced] $(LLMC_MLP_BLOCKS=$b timeout -s KILL 60 .bin/llmc bench /tmp/w/trows.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/attn-proj-rows-$b.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
  python3 bench/graph_trace_summary.py $OUT/attn-proj-rows-$b.json --launches 4 2>&1 | sed -n 2,6p; gzip -9 $OUT/attn-proj-rows-$b.json
done
echo "done $(date -u +%T)"
