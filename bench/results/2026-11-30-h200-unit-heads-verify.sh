#!/usr/bin/env bash
# Verification of e3fbafe (attention blocks of one query head on the graph path, the group on
# the persistent path): every GPU test, the faults, compute-sanitizer memcheck + racecheck on the
# graph path (one head a block, splits of 8) and memcheck on the persistent path, full scale vs
# transformers f32 on both paths; then the Qwen2.5-1.5B shape: graph with attention blocks of at
# least 32 / 64 (default) / 128 / 256 positions after 32, 1,024 and 4,096 prompt tokens, and
# --quantize q4_k / q8_0 plans (graph) after 32 and 1,024. .bin: llmc, cuda_vs_cpu, cuda_faults.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/unit-heads-verify.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |replays|panicked|result" | head -30
timeout 50 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
for d in graph persistent; do
  LLMC_ATTN_MIN_CHUNK=8 .bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/fp-$d.plan --max-seq-len 64 --decode $d 2>&1 | tail -1 | cut -c1-40
  for tool in memcheck racecheck; do
    [ $d = persistent ] && [ $tool != memcheck ] && continue
    echo "== compute-sanitizer $tool, $d, qwen2_tied (biases), 20-token prompt, splits of 8"
    LLMC_ATTN_MIN_CHUNK=8 timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fp-$d.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
  done
done
for d in graph persistent; do
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
for prompt in 32 32 1024 4096; do
  for mc in 64 32 128 256; do
    echo "[graph, min chunk $mc, prompt $prompt] $(LLMC_ATTN_MIN_CHUNK=$mc timeout 60 .bin/llmc bench /tmp/w/graph.plan --prompt-len $prompt --gen 128 2>&1 | head -1 | cut -c1-80)"
  done
done
for q in q4_k q8_0; do
  .bin/llmc compile /tmp/w/m -o /tmp/w/$q.plan --quantize $q --max-seq-len 4352 2>&1 | tail -1 | cut -c1-40
  echo "[$q graph] $(timeout 60 .bin/llmc bench /tmp/w/$q.plan --prompt-len 32,1024 --gen 128 2>&1 | head -2 | cut -c1-80 | tr '\n' ' ')"
done
