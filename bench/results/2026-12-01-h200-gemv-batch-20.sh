#!/usr/bin/env bash
# GEMV_BATCH 20 (the bf16 GEMVs' 16-byte loads in flight per lane; 128 registers, no spills in
# the SASS) against 16 (set through LLMC_EXPERIMENT_DEFINES; -gemv-batch.log had 8 and 12 far
# slower), Qwen2.5-1.5B shape, random bf16 weights, graph decode, 128 tokens after 32 and 1,024;
# then every GPU test and memcheck on the graph path with 20. .bin: llmc, cuda_vs_cpu, cuda_faults.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/gemv-batch-20.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
for b in 20 16; do
  LLMC_EXPERIMENT_DEFINES="GEMV_BATCH=$b" .bin/llmc compile /tmp/w/m -o /tmp/w/b$b.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
done
for round in 1 2; do for b in 16 20; do
  echo "[batch $b, prompt 32, round $round] $(timeout 60 .bin/llmc bench /tmp/w/b$b.plan --prompt-len 32 --gen 128 2>&1 | head -1 | cut -c1-80)"
done; done
for b in 16 20; do
  echo "[batch $b, prompt 1024] $(timeout 60 .bin/llmc bench /tmp/w/b$b.plan --prompt-len 1024 --gen 128 2>&1 | head -1 | cut -c1-80)"
done
echo "== tests (GEMV_BATCH 20)"
timeout 150 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |replays|FFN 6144|panicked|result" | head -30
timeout 30 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
LLMC_ATTN_MIN_CHUNK=8 .bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/fp.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
echo "== compute-sanitizer memcheck, graph, qwen2_tied, 20-token prompt, splits of 8"
LLMC_ATTN_MIN_CHUNK=8 timeout 40 compute-sanitizer --tool memcheck --error-exitcode 9 .bin/llmc run /tmp/fp.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
