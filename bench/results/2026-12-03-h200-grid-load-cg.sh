#!/usr/bin/env bash
# #13: staging x takes ~1.5 us after each kernel's wait (-mlp-marks.log). Is it the L1 path?
# Activations read after the grid wait through L2 only (__ldcg, GRID_LOAD_CG, -grid-load-cg.patch)
# against L1-cached (__ldca, the default): three interleaved rounds after 32 tokens on the random
# Qwen2.5-1.5B shape. .bin: llmc (da172ca with the patch), COMMIT. Not run yet: the session's
# device time was spent (next session: build .bin/llmc with the patch applied, then revert it).
# Result: measured instead inside -mlp-stash.sh (17:19-17:20 UTC, cg.plan at no stash):
# 1.114-1.115 ms/token after 32 tokens against 1.112-1.116 in the same rounds. No change; not kept.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/grid-load-cg.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
timeout -s KILL 100 .bin/llmc compile /tmp/w/m -o /tmp/w/ca.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
LLMC_EXPERIMENT_DEFINES="GRID_LOAD_CG=1" timeout -s KILL 100 .bin/llmc compile /tmp/w/m -o /tmp/w/cg.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
for r in 1 2 3; do
  for p in ca cg; do
    echo "[$p, round $r] $(timeout -s KILL 30 .bin/llmc bench /tmp/w/$p.plan --prompt-len 32 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-60 | tr '\n' ' ')"
  done
done
echo "done $(date -u +%T)"
