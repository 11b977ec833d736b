#!/usr/bin/env bash
# #13: the short-context graph on the Qwen3-1.7B shape (random bf16 weights, bench/common.py's
# config; attention_proj fuses there too: 128 KiB of W_o a block): 128 tokens after 32 and
# 1,024, the default against one graph (LLMC_FUSE_ATTN_PROJ=0), three interleaved rounds.
# .bin: llmc (922f141's kernels = 0e3c8af), COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/short-graph-qwen3.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
( cd bench && python3 -c "
import sys; from common import make_config, random_model, save_model
save_model(random_model(make_config('qwen3-1.7b'), 'cuda'), '/tmp/w/q3')" ) 2>&1 | tail -2
timeout -s KILL 120 .bin/llmc compile /tmp/w/q3 -o /tmp/w/q3.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
for r in 1 2 3; do
  for v in "short-graph LLMC_FUSE_MLP=1" "one-graph LLMC_FUSE_ATTN_PROJ=0"; do
    set -- $v
    echo "[$1, round $r] $(env $2 timeout -s KILL 90 .bin/llmc bench /tmp/w/q3.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin|kernels per' | cut -c1-60 | tr '\n' ' ')"
  done
done
echo "done $(date -u +%T)"
