#!/usr/bin/env bash
# #13: set_sampling with two decode graphs: the sampler tests of cuda_vs_cpu, where qwen3_untied's
# graph plan now decodes from the short-context graph into the other (positions 249-289, the
# switch at 256) after each of five sampler changes. .bin: cuda_vs_cpu, COMMIT.
# Its one run (14:21 UTC, 6b54eac, -sampling-two-graphs.log): device sampling and qwen2_tied's
# graph case passed, then the test panicked compiling qwen3_untied for 320 positions (the fixture's
# context is 128). 35f093b compiles a copy with that context; not yet run (the session's device
# time was spent). Run at bff0256 as the first part of -mlp-prefetch.sh (15:16 UTC): both sampler
# tests pass, qwen3_untied's graph case from the short-context graph into the other included
# (-mlp-prefetch.log).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee $OUT/sampling-two-graphs.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
LLMC_EXPERIMENT_DEFINES="SPIN_LIMIT=20000000" timeout -s KILL 150 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 sampl 2>&1 | grep -E "^test |short-context|panicked|result|llmc spin" | head -20
echo "done $(date -u +%T)"
