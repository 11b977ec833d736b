#!/usr/bin/env bash
# #13: qkv_rope's 256 blocks of 4 warps land four to an SM on ~64 SMs, where the phase after x
# is staged (~400 instructions a warp, 16 warps an SM) takes ~1.5 us. Blocks of 16 warps with 8
# tasks each (QKV_WIDE=1 in the plan, LLMC_QKV_WIDE=1 at run time: a block holds its SM's
# registers, so 128 blocks spread over 128 SMs, 8 tasks an SM). Greedy tokens of both plans
# compared, three interleaved rounds on the random Qwen2.5-1.5B shape (bf16, 128 tokens after 32
# and 1,024). .bin: llmc, COMMIT.
# Code: d2758bd + -qkv-wide.patch. NOT RUN: this session's device time was spent (next: build
# .bin/llmc with the patch applied, run this script, then revert the patch).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/qkv-wide.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
timeout -s KILL 100 .bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
LLMC_EXPERIMENT_DEFINES="QKV_WIDE=1" timeout -s KILL 100 .bin/llmc compile /tmp/w/m -o /tmp/w/wide.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
a=$(timeout -s KILL 30 .bin/llmc run /tmp/w/p.plan --prompt-ids $(seq -s, 1 32) --max-tokens 48 --ignore-eos 2>/dev/null | md5sum)
b=$(LLMC_QKV_WIDE=1 timeout -s KILL 30 .bin/llmc run /tmp/w/wide.plan --prompt-ids $(seq -s, 1 32) --max-tokens 48 --ignore-eos 2>/dev/null | md5sum)
echo "greedy output: default $a, wide $b"
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for v in "p 0" "wide 1"; do
    set -- $v
    echo "[$1, round $r] $(LLMC_QKV_WIDE=$2 timeout -s KILL 40 .bin/llmc bench /tmp/w/$1.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-60 | tr '\n' ' ')"
  done
done
echo "done $(date -u +%T)"
