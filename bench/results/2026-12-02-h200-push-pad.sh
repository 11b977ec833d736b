#!/usr/bin/env bash
# #13, after the late norm (7854974): (a) clustered attention pushing its parts into the merging
# blocks' shared memory (ATTN_PUSH_MERGE, from -norm-rows-push.patch; 1.202 / 1.322 against
# 1.206 / 1.330 off in -first-bench-2.log) and (b) fewer GEMV blocks an SM: q/k/v's 256 blocks
# landed four to an SM on ~67 SMs (the first to free up), o_proj's 384 on 96. LLMC_PAD_<KERNEL>
# adds dynamic shared memory to that kernel's launches so that at most 2 (80,000 bytes more for
# qkv_rope: 89 KB a block) or 3 (60,000: 69 KB) fit an SM. Random Qwen2.5-1.5B shape, bf16,
# 128 tokens after 32 and 1,024, two interleaved rounds.
# .bin: llmc (7854974 with -push-pad.patch), COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/push-pad.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
c() { LLMC_EXPERIMENT_DEFINES="$1" .bin/llmc compile /tmp/w/m -o /tmp/w/$2.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40; }
c "ATTN_PUSH_MERGE=0" off & c "" push &
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
for r in 1 2; do for v in off push qkv2 qkv3 lin3 qkv2lin3; do
  plan=off; env=""
  case $v in push) plan=push;; qkv2) env="LLMC_PAD_QKV_ROPE=80000";; qkv3) env="LLMC_PAD_QKV_ROPE=60000";; lin3) env="LLMC_PAD_LINEAR=60000";; qkv2lin3) env="LLMC_PAD_QKV_ROPE=80000 LLMC_PAD_LINEAR=60000";; esac
  echo "[$v, round $r] $(env $env timeout -s KILL 60 .bin/llmc bench /tmp/w/$plan.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-60 | tr '\n' ' ')"
done; done
echo "done $(date -u +%T)"
