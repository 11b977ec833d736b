#!/usr/bin/env bash
# The rest of the final verification at 5418e86 (kernels and src as HEAD): every GPU test of
# cuda_vs_cpu but the two final-i ran, the faults, compute-sanitizer memcheck on both decode
# paths and racecheck on the persistent one (qwen2_tied, splits of 8). .bin: llmc, cuda_vs_cpu, cuda_faults.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/final-j.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 120 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 --skip block_format_plans --skip persistent_decode_replays 2>&1 | grep -E "^test |panicked|result" | head -20
timeout 30 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
for d in graph persistent; do
  LLMC_ATTN_MIN_CHUNK=8 .bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/fp-$d.plan --max-seq-len 64 --decode $d 2>&1 | tail -1 | cut -c1-40
  for tool in memcheck racecheck; do
    [ $d = graph ] && [ $tool != memcheck ] && continue
    echo "== compute-sanitizer $tool, $d, qwen2_tied (biases), 20-token prompt, splits of 8"
    LLMC_ATTN_MIN_CHUNK=8 timeout 40 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fp-$d.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
  done
done
