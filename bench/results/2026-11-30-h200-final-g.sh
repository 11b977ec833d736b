#!/usr/bin/env bash
# Final device run at the committed code (round trips off the step path, attention's 64-position
# blocks): every GPU test (both decode paths, 10,000 persistent replays, quantized formats,
# prefill), the faults, compute-sanitizer on both paths with attention splits merged, full scale
# vs transformers f32 on both paths, then decode of the Qwen2.5-1.5B shape on both paths after
# 32 (two rounds), 1,024 and 4,096 prompt tokens. .bin: llmc, cuda_vs_cpu, cuda_faults.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/final_g.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |replays|panicked|result" | head -30
timeout 50 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
for d in persistent graph; do
  LLMC_ATTN_MIN_CHUNK=8 .bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/fp-$d.plan --max-seq-len 64 --decode $d 2>&1 | tail -1 | cut -c1-40
  for tool in memcheck racecheck synccheck; do
    [ $d = graph ] && [ $tool != memcheck ] && continue
    echo "== compute-sanitizer $tool, $d, qwen2_tied (biases), 20-token prompt, splits of 8"
    LLMC_ATTN_MIN_CHUNK=8 timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fp-$d.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
  done
done
for d in persistent graph; do
  echo "== full scale, $d"
  timeout 120 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-$d --shapes qwen2.5-1.5b --decode $d 2>&1 | grep -E "qwen|PASS|FAIL|Error|error" | head -4
done
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
.bin/llmc compile /tmp/w/m -o /tmp/w/graph.plan --weights bf16 --max-seq-len 4352 2>&1 | tail -1 | cut -c1-40
.bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 4352 --decode persistent 2>&1 | tail -1 | cut -c1-40
for round in 1 2; do
  for path in graph p; do echo "[$path, prompt 32, round $round] $(timeout 60 .bin/llmc bench /tmp/w/$path.plan --prompt-len 32 --gen 128 2>&1 | head -1 | cut -c1-150)"; done
done
for prompt in 1024 4096; do
  for path in graph p; do echo "[$path, prompt $prompt] $(timeout 60 .bin/llmc bench /tmp/w/$path.plan --prompt-len $prompt --gen 128 2>&1 | head -1 | cut -c1-150)"; done
done
