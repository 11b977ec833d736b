#!/usr/bin/env bash
# Attention asks L2 for the first bytes of its layer's down projection before its wait
# (kernels/common.cuh l2_prefetch_share; LLMC_L2_PREFETCH_MB, 0 = none): graph decode of the
# Qwen2.5-1.5B shape (random weights), bf16 with the fused MLP and with two kernels
# (LLMC_FUSE_MLP=0), and q4_k; then the fixture test and memcheck of a fixture plan.
# Not kept: the code is 2026-12-01-h200-l2-prefetch.patch on a967c49. .bin: llmc, cuda_vs_cpu, cuda_faults.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/l2-prefetch.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m > /tmp/w/make.log 2>&1; pids=""
.bin/llmc compile /tmp/w/m -o /tmp/w/bf16.plan --weights bf16 --max-seq-len 1152 > /tmp/w/c1.log 2>&1 & pids="$pids $!"
.bin/llmc compile /tmp/w/m -o /tmp/w/q4_k.plan --quantize q4_k --max-seq-len 1152 > /tmp/w/c2.log 2>&1 & pids="$pids $!"
wait $pids; tail -qn1 /tmp/w/c1.log /tmp/w/c2.log | cut -c1-60
bench() { echo "[$1 fuse $2 prefetch $3 MB] $(LLMC_FUSE_MLP=$2 LLMC_L2_PREFETCH_MB=$3 timeout 60 .bin/llmc bench /tmp/w/$1.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-50 | tr '\n' ' ')"; }
for round in 1 2; do
  for mb in 0 12 20 28; do bench bf16 1 $mb; bench bf16 0 $mb; done
  for mb in 0 8; do bench q4_k 1 $mb; done
done
echo "== fixture test"
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 cuda_matches_cpu_on_every_fixture 2>&1 | grep -E "worst|result|panicked" | cut -c1-150 | head -40
