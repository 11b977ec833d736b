#!/usr/bin/env bash
# #13, a measurement: where the ~1.2-1.3 us after each kernel's wait and attention_proj's ~3 us from
# P.V done to its exit go. -attn-proj-marks.patch (on 1647127; without its defines the SASS is
# 1647127's) moves the block trace's two marks:
# - ATTN_PROJ_MARKS: attention_proj's blocks mark after P.V (mark 0) and after the cluster's merge
#   (mark 1), so exit - mark 1 is W_o's copy wait, the barrier and the projection with its
#   reductions;
# - STAGE_X_MARKS: a GEMV's blocks (qkv_rope, the MLP, the LM head) mark when thread 0's first quad
#   of x has arrived (mark 0) and when x is staged (mark 1): an L2 round trip right after the wait
#   against the block's staging and its barrier.
# Random Qwen2.5-1.5B shape, bf16, one traced run after 32 tokens. .bin: llmc, COMMIT.
# NOT RUN: the session's device time was spent (next: apply the patch, build .bin/llmc, run this
# script, revert the patch).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/attn-proj-marks.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
LLMC_EXPERIMENT_DEFINES="ATTN_PROJ_MARKS=1 STAGE_X_MARKS=1 TRACE_BLOCKS=1" timeout -s KILL 100 .bin/llmc compile /tmp/w/m -o /tmp/w/t.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
echo "[traced] $(timeout -s KILL 40 .bin/llmc bench /tmp/w/t.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/attn-proj-marks.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
python3 bench/graph_trace_summary.py $OUT/attn-proj-marks.json --launches 4 2>&1 | tail -16
gzip -9 $OUT/attn-proj-marks.json
echo "done $(date -u +%T)"
