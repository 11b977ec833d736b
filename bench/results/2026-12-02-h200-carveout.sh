#!/usr/bin/env bash
# #13: padding q/k/v's or o_proj's shared memory so fewer blocks share an SM made decode 3-11%
# slower (-push-pad.log), more with 3 blocks an SM than with 2: a kernel whose shared memory
# needs another L1/shared split than the kernel before it must wait for that SM to drain. Is
# that happening between main's own kernels? LLMC_CARVEOUT=100 asks the largest shared split
# for every kernel (one configuration throughout); then the padding again on top of it.
# Random Qwen2.5-1.5B shape, bf16, ATTN_PUSH_MERGE on, 128 tokens after 32 and 1,024, two
# interleaved rounds. .bin: llmc (7854974 with -carveout.patch), COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/carveout.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
.bin/llmc compile /tmp/w/m -o /tmp/w/push.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
for r in 1 2; do for v in base c100 c100qkv2 c100qkv2lin3 c0; do
  env=""
  case $v in c100) env="LLMC_CARVEOUT=100";; c100qkv2) env="LLMC_CARVEOUT=100 LLMC_PAD_QKV_ROPE=80000";; c100qkv2lin3) env="LLMC_CARVEOUT=100 LLMC_PAD_QKV_ROPE=80000 LLMC_PAD_LINEAR=60000";; c0) env="LLMC_CARVEOUT=0";; esac
  echo "[$v, round $r] $(env $env timeout -s KILL 60 .bin/llmc bench /tmp/w/push.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-60 | tr '\n' ' ')"
done; done
echo "done $(date -u +%T)"
