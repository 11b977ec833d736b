#!/usr/bin/env bash
# #13: right after its wait each bf16 GEMV warp asks L2 for the rows of its next task(s)
# (GEMV_PREFETCH_NEXT=1|2, cp.async.bulk.prefetch.L2; the fused MLP before its residual ticket),
# so that HBM streams while x is staged (~1.5 us a launch in which the MLP's blocks, their
# registers full with the first task, request nothing). After the wait, not before: prefetches
# before it slowed attention_proj (-mlp-prefetch.log, -mlp-stash.log). Three interleaved rounds on
# the random Qwen2.5-1.5B shape (bf16, 128 tokens after 32 and 1,024), then a traced step of each.
# .bin: llmc, COMMIT.
# Code: main (b7535b3) + -mlp-stash.patch, plans with and without the define.
# Result (17:36 UTC, -prefetch-next.log): slower. ms/token after 32 / 1,024, three rounds: none
# 1.112-1.115 / 1.251-1.255, one task 1.155-1.161 / 1.281-1.285, two 1.200-1.204 / 1.323-1.327.
# Traced: the MLP's gate/up done 13.4 us after the release against 12.8.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/prefetch-next.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
for v in "p " "pf1 GEMV_PREFETCH_NEXT=1" "pf2 GEMV_PREFETCH_NEXT=2" "t0 TRACE_BLOCKS=1" "t1 TRACE_BLOCKS=1 GEMV_PREFETCH_NEXT=1"; do
  set -- $v
  name=$1; shift
  LLMC_EXPERIMENT_DEFINES="$*" timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/$name.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
done
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for p in p pf1 pf2; do
    echo "[$p, round $r] $(timeout -s KILL 60 .bin/llmc bench /tmp/w/$p.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-60 | tr '\n' ' ')"
  done
done
for p in t0 t1; do
  echo "[$p traced] $(timeout -s KILL 60 .bin/llmc bench /tmp/w/$p.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/prefetch-next-$p.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
  python3 bench/graph_trace_summary.py $OUT/prefetch-next-$p.json --launches 4 2>&1 | tail -12
  gzip -9 $OUT/prefetch-next-$p.json
done
echo "done $(date -u +%T)"
