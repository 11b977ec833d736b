#!/usr/bin/env bash
# At the final commit: the kernels as one unit of #includes compile with the device's NVRTC and
# pass the GPU tests; memcheck, racecheck and synccheck on both decode paths.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/final_f.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 120 .bin/cuda_vs_cpu --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
for d in graph persistent; do
  LLMC_ATTN_MIN_CHUNK=8 .bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/fp-$d.plan --max-seq-len 64 --decode $d 2>&1 | tail -1 | cut -c1-40
  for tool in memcheck racecheck synccheck; do
    echo "== compute-sanitizer $tool, $d, 20-token prompt, splits of 8"
    LLMC_ATTN_MIN_CHUNK=8 timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fp-$d.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
  done
done
