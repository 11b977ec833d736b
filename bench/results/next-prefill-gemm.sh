#!/usr/bin/env bash
# For the next device session (not run yet), after next-prefill-precision.sh: two prefill
# branches against main in one call. wip-gemm-bn128: GEMM tiles 128 weight rows wide (x, the f32
# operand, re-read from L2 half as often); wip-prefill-chunk-2048: 2,048-row passes (attention's
# blocks fill the SMs). Each branch's GPU prefill tests (the 4,096-token test runs 1,000 + 2,048 +
# 1,048 rows on the chunk branch), sanitizer on the wide tiles, then TTFT interleaved.
# Build here: main's llmc as .bin/llmc; wip-gemm-bn128's llmc and cuda_vs_cpu as .bin/llmc_bn128
# and .bin/cuda_vs_cpu_bn128; wip-prefill-chunk-2048's as .bin/llmc_chunk and
# .bin/cuda_vs_cpu_chunk; carry them, .bin/blockfix6k and .bin/COMMIT (about 60 MB).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/prefill-gemm.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 .bin/cuda_vs_cpu_bn128 --ignored --nocapture --test-threads 1 prefill block_format 2>&1 | grep -E "^test |worst|panicked|result"
.bin/llmc_bn128 compile .bin/blockfix6k -o /tmp/bf.plan --quantize q4_k --max-seq-len 160 2>&1 | tail -1 | cut -c1-30
for tool in memcheck racecheck; do
  echo "== compute-sanitizer $tool, q4_k FFN 6144, 100-token prompt (128-wide tiles, split K) + 4 tokens"
  timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc_bn128 run /tmp/bf.plan --prompt-ids $(seq -s, 1 100) --max-tokens 4 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
for w in bf16 q4_k; do
  if [ $w = bf16 ]; then flag="--weights bf16"; else flag="--quantize $w"; fi
  for bin in llmc llmc_bn128; do .bin/$bin compile /tmp/w/m -o /tmp/w/$w-$bin.plan $flag --max-seq-len 4200 2>&1 | tail -1 | cut -c1-40; done
  for round in 1 2; do for bin in llmc llmc_bn128; do
    echo "$w ($bin, round $round): $(timeout 90 .bin/$bin bench /tmp/w/$w-$bin.plan --prompt-len 32,1024,4096 --gen 16 2>&1 | head -3 | grep -o 'TTFT.*)')"
  done; done
  rm -f /tmp/w/$w-*.plan
done
timeout 120 .bin/cuda_vs_cpu_chunk --ignored --nocapture --test-threads 1 prefill 2>&1 | grep -E "^test |worst|panicked|result"
.bin/llmc_chunk compile /tmp/w/m -o /tmp/w/c.plan --weights bf16 --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40
.bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40
for round in 1 2; do
  echo "main: $(timeout 90 .bin/llmc bench /tmp/w/p.plan --prompt-len 1024,4096,8192 --gen 16 2>&1 | head -3 | grep -o 'TTFT.*)')"
  echo "chunk 2048: $(timeout 90 .bin/llmc_chunk bench /tmp/w/c.plan --prompt-len 1024,4096,8192 --gen 16 2>&1 | head -3 | grep -o 'TTFT.*)')"
done
