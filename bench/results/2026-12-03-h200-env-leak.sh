#!/usr/bin/env bash
# cuda_vs_cpu's fixture test, then the set_sampling test in the same process (the order of a full
# run): -mlp-spare.log's full run failed the latter's check that the short-context graph serves
# 256 positions, because the former left its last case's LLMC_ATTN_MIN_CHUNK=8 set (32
# positions). It now removes its variables when done. .bin: cuda_vs_cpu, COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee $OUT/env-leak.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
LLMC_EXPERIMENT_DEFINES="SPIN_LIMIT=20000000" timeout -s KILL 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 cuda_matches_cpu_on_every_fixture set_sampling 2>&1 | grep -E "^test |short-context|panicked|result|llmc spin" | head -20
echo "done $(date -u +%T)"
