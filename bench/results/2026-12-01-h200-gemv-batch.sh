#!/usr/bin/env bash
# The bf16 GEMVs' 16-byte loads in flight per lane (GEMV_BATCH, 16) at 8 and 12, set at compile
# time through LLMC_EXPERIMENT_DEFINES (d58a9c4 + an #ifndef around GEMV_BATCH): fewer registers
# (114 at 16) and less straight code, against fewer bytes in flight. Qwen2.5-1.5B shape, random
# bf16 weights, graph decode, 128 tokens after 32 and 1,024, interleaved rounds. .bin: llmc.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee $OUT/gemv-batch.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
for b in 16 8 12; do
  LLMC_EXPERIMENT_DEFINES="GEMV_BATCH=$b" .bin/llmc compile /tmp/w/m -o /tmp/w/b$b.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
done
for round in 1 2; do for b in 16 8 12; do
  echo "[batch $b, prompt 32, round $round] $(timeout 60 .bin/llmc bench /tmp/w/b$b.plan --prompt-len 32 --gen 128 2>&1 | head -1 | cut -c1-80)"
done; done
for b in 16 8 12; do
  echo "[batch $b, prompt 1024] $(timeout 60 .bin/llmc bench /tmp/w/b$b.plan --prompt-len 1024 --gen 128 2>&1 | head -1 | cut -c1-80)"
done
