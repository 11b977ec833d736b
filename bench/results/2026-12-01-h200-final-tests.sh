#!/usr/bin/env bash
# Every GPU test and the fault tests at 6a87478 (the binaries of -persistent-q.sh; what landed
# after it changes docs, a CPU unit test and --help only).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee $OUT/final-tests.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 330 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |FFN|Persistent \(|prefill|replays|draws|logprobs|panicked|result" | head -80
timeout 60 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |result"
