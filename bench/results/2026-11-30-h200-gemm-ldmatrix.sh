#!/usr/bin/env bash
# One device call for the prefill GEMM that splits each x tile once in shared memory and loads
# its fragments by ldmatrix (branch wip-gemm-ldmatrix): the GPU prefill tests, sanitizer,
# the full-scale check after a 1,024-token prompt, then TTFT of main (.bin/llmc_main) vs the
# branch (.bin/llmc_ldm) in the same call. Build here: the branch's llmc as .bin/llmc_ldm and its
# cuda_vs_cpu, main's llmc as .bin/llmc_main; carry those, .bin/blockfix6k, .bin/COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/ldm.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 prefill block_format 2>&1 | grep -E "^test |worst|panicked|result" | head -30
.bin/llmc_ldm compile .bin/blockfix6k -o /tmp/bf.plan --quantize q4_k --max-seq-len 160 2>&1 | tail -1 | cut -c1-30
.bin/llmc_ldm compile tests/fixtures/qwen3_untied -o /tmp/fp.plan --max-seq-len 128 2>&1 | tail -1 | cut -c1-30
for tool in memcheck racecheck synccheck; do
  for plan in fp bf; do
    echo "== compute-sanitizer $tool, $plan (bf16 qwen3_untied / q4_k FFN 6144), 100-token prompt + 4 tokens"
    timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc_ldm run /tmp/$plan.plan --prompt-ids $(seq -s, 1 100) --max-tokens 4 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
  done
done
timeout 200 python3 bench/verify_full_scale.py --llmc .bin/llmc_ldm --out /tmp/verify --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | tail -5
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
for w in bf16 q4_k q8_0; do
  if [ $w = bf16 ]; then flag="--weights bf16"; else flag="--quantize $w"; fi
  for bin in llmc_main llmc_ldm; do
    .bin/$bin compile /tmp/w/m -o /tmp/w/$w-$bin.plan $flag --max-seq-len 4200 2>&1 | tail -1 | cut -c1-40
    echo "$w ($bin): $(timeout 90 .bin/$bin bench /tmp/w/$w-$bin.plan --prompt-len 32,128,1024,4096 --gen 32 2>&1 | head -3 | grep -o 'ms/token.*tok/s\|TTFT.*)' | tr '\n' ' ')"
    rm -f /tmp/w/$w-$bin.plan
  done
done
