#!/usr/bin/env bash
# One device call for prefill attention on tensor cores (branch wip-flash-attention): the GPU
# prefill tests (60-token and 4,096-token prompts on every fixture, block formats with 100-token
# prompts), compute-sanitizer on multi-tile prefill attention, the full-scale check against
# transformers f32 after a 1,024-token prompt, and TTFT of main (.bin/llmc_main) vs the branch
# (.bin/llmc) in the same call. Build here: cargo build --release and cargo test --release
# --no-run --test cuda_vs_cpu on the branch (copied to .bin/), main's build as .bin/llmc_main;
# carry .bin/llmc, .bin/llmc_main, .bin/cuda_vs_cpu, .bin/blockfix6k, .bin/COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/flash.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 prefill block_format 2>&1 | grep -E "^test |worst|panicked|result" | head -30
.bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/fp.plan --max-seq-len 128 2>&1 | tail -1 | cut -c1-30
.bin/llmc compile .bin/blockfix6k -o /tmp/bf.plan --quantize q4_k --max-seq-len 160 2>&1 | tail -1 | cut -c1-30
for tool in memcheck racecheck synccheck; do
  echo "== compute-sanitizer $tool, bf16 qwen3_untied (d 32), 100-token prompt (two tiles of positions) + 4 tokens"
  timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fp.plan --prompt-ids $(seq -s, 1 100) --max-tokens 4 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
echo "== compute-sanitizer memcheck, q4_k FFN 6144 (d 64), 130-token prompt + 4 tokens"
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 .bin/llmc run /tmp/bf.plan --prompt-ids $(seq -s, 1 130) --max-tokens 4 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
timeout 200 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | tail -6
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
for w in bf16 q4_k; do
  if [ $w = bf16 ]; then flag="--weights bf16"; lens=32,1024,4096,8192; else flag="--quantize $w"; lens=32,1024; fi
  for bin in llmc_main llmc; do
    .bin/$bin compile /tmp/w/m -o /tmp/w/$w-$bin.plan $flag --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40
    echo "$w ($bin): $(timeout 90 .bin/$bin bench /tmp/w/$w-$bin.plan --prompt-len $lens --gen 32 2>&1 | head -3 | grep -o 'ms/token.*tok/s\|TTFT.*)' | tr '\n' ' ')"
    rm -f /tmp/w/$w-$bin.plan
  done
done
