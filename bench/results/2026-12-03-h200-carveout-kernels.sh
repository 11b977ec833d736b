#!/usr/bin/env bash
# #13: each kernel's L1 / shared memory split (CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT,
# LLMC_CARVEOUT_<KERNEL>=percent, -carveout-kernels.patch), left to the driver until now. A fused MLP
# block with 192 KiB of shared memory ran 10% slower (-mlp-pad.log), so the L1 left to the loads in
# flight matters; does the driver's choice leave some kernel less than it could? Two interleaved
# rounds on the random Qwen2.5-1.5B shape (bf16, 128 tokens after 32 and 1,024). .bin: llmc, COMMIT.
# Code: d2758bd's parent (70597a5) + -carveout-kernels.patch.
# Result (17:52 UTC, -carveout-kernels.log), ms/token after 32 / 1,024, two rounds: default
# 1.115-1.117 / 1.228-1.234; MLP 0% 1.114-1.120 / 1.227-1.235 (the same: the driver already gives it
# the most L1); MLP 100% 1.285-1.288 / 1.417-1.422; qkv_rope 0% 1.282-1.286; LM head 0% 1.315-1.319;
# the long graph's kernels 0% 1.117-1.125 / 1.450-1.455; all 0% 1.488-1.489 / 1.724-1.731. The
# driver's choice is the best of these everywhere; nothing kept.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/carveout-kernels.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
echo "== bench ($(date -u +%T))"
for r in 1 2; do
  for v in "default" "mlp0 LLMC_CARVEOUT_MLP=0" "mlp100 LLMC_CARVEOUT_MLP=100" "qkv0 LLMC_CARVEOUT_QKV_ROPE=0" "head0 LLMC_CARVEOUT_LM_HEAD=0" \
           "long0 LLMC_CARVEOUT_MLP=0 LLMC_CARVEOUT_ATTENTION=0 LLMC_CARVEOUT_LINEAR=0" \
           "all0 LLMC_CARVEOUT_MLP=0 LLMC_CARVEOUT_QKV_ROPE=0 LLMC_CARVEOUT_LM_HEAD=0 LLMC_CARVEOUT_ATTENTION=0 LLMC_CARVEOUT_LINEAR=0"; do
    set -- $v
    name=$1; shift
    echo "[$name, round $r] $(env "$@" timeout -s KILL 60 .bin/llmc bench /tmp/w/p.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-60 | tr '\n' ' ')"
  done
done
echo "done $(date -u +%T)"
