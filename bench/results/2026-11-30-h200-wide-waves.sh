#!/usr/bin/env bash
# wgmma tile choice by waves (wide_is_faster): at 2,048-row passes q/k/v, o_proj and down take
# 128 x 256 tiles (one wave) instead of 128 x 128 (two). TTFT against main 122f394 (TMA), then
# full scale with a 2,048-token prompt (one pass: the wide tiles) and memcheck of one layer.
# Build here: main's llmc as .bin/llmc_main, this change's as .bin/llmc.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/wide-waves.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
save_model(random_model(make_config("qwen2.5-1.5b", 1), "cuda"), "/tmp/w/one")
print("models written")
PY
for bin in llmc_main llmc; do .bin/$bin compile /tmp/w/m -o /tmp/w/$bin.plan --weights bf16 --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40; done
for bin in llmc_main llmc llmc_main llmc; do
  echo "$bin: $(timeout 60 .bin/$bin bench /tmp/w/$bin.plan --prompt-len 1024,2048,4096,8192 --gen 16 2>&1 | head -3 | grep -o 'TTFT.*)')"
done
.bin/llmc compile /tmp/w/one -o /tmp/one.plan --weights bf16 --max-seq-len 2100 2>&1 | tail -1 | cut -c1-30
echo "== compute-sanitizer memcheck, one Qwen2.5-1.5B layer, 2,048-token prompt + 2 tokens"
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 .bin/llmc run /tmp/one.plan --prompt-ids $(seq -s, 1 2048) --max-tokens 2 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
echo "== full scale, batched prefill of 2,048 tokens"
timeout 120 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify --shapes qwen2.5-1.5b --prompt-len 2048 --steps 8 --max-seq-len 2100 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
