#!/usr/bin/env bash
# One device call for prefill GEMM tiles of 128 rows (branch wip-gemm-bm128, 8 warps, each weight
# tile serving twice the prompt rows): the GPU prefill tests on the branch's test binary, sanitizer
# on the block-format GEMM with 128-row tiles, then TTFT of main (.bin/llmc_main) vs the branch
# (.bin/llmc_bm128), interleaved. Build here: the branch's llmc as .bin/llmc_bm128 and its
# cuda_vs_cpu test binary, main's llmc as .bin/llmc_main; carry those, .bin/blockfix6k, .bin/COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/bm128.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 prefill block_format 2>&1 | grep -E "^test |worst|panicked|result" | head -30
.bin/llmc_bm128 compile .bin/blockfix6k -o /tmp/bf.plan --quantize q4_k --max-seq-len 300 2>&1 | tail -1 | cut -c1-30
for tool in memcheck racecheck; do
  echo "== compute-sanitizer $tool, q4_k FFN 6144, 260-token prompt (split and whole 128-row tiles) + 4 tokens"
  timeout 90 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc_bm128 run /tmp/bf.plan --prompt-ids $(seq -s, 1 260) --max-tokens 4 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
for w in bf16 q4_k q8_0; do
  if [ $w = bf16 ]; then flag="--weights bf16"; else flag="--quantize $w"; fi
  for bin in llmc_main llmc_bm128; do .bin/$bin compile /tmp/w/m -o /tmp/w/$w-$bin.plan $flag --max-seq-len 4200 2>&1 | tail -1 | cut -c1-40; done
  for round in 1 2; do for bin in llmc_main llmc_bm128; do
    echo "$w ($bin, round $round): $(timeout 90 .bin/$bin bench /tmp/w/$w-$bin.plan --prompt-len 32,128,1024,4096 --gen 32 2>&1 | head -3 | grep -o 'ms/token.*tok/s\|TTFT.*)' | tr '\n' ' ')"
  done; done
  rm -f /tmp/w/$w-*.plan
done
