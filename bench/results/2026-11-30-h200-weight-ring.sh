#!/usr/bin/env bash
# The persistent decode kernel's weight ring (kernels/persistent.cu: each worker streams its GEMV
# instructions' weight rows into shared-memory stages by bulk copies, ahead of the instructions).
# Fixture tests on both decode paths (and the 10,000-replay test), compute-sanitizer on a
# persistent fixture plan, then decode of the Qwen2.5-1.5B shape: graph, the previous persistent
# kernel (.bin/llmc_main) and the ring (.bin/llmc), two rounds, a trace, and full scale vs
# transformers f32 on the persistent path. .bin: llmc, llmc_main, cuda_vs_cpu (built here).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/weight-ring.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 matches_cpu_on_every_fixture persistent 2>&1 | grep -E "^test |worst|replays|panicked|result" | head -40
.bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/fp.plan --max-seq-len 64 --decode persistent 2>&1 | tail -1 | cut -c1-60
for tool in memcheck racecheck synccheck; do
  echo "== compute-sanitizer $tool, qwen3_untied persistent, 20-token prompt + 8 tokens"
  timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fp.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
.bin/llmc compile /tmp/w/m -o /tmp/w/graph.plan --weights bf16 2>&1 | tail -1 | cut -c1-60
.bin/llmc_main compile /tmp/w/m -o /tmp/w/old.plan --weights bf16 --decode persistent 2>&1 | tail -1 | cut -c1-60
.bin/llmc compile /tmp/w/m -o /tmp/w/ring.plan --weights bf16 --decode persistent 2>&1 | tail -1 | cut -c1-60
for round in 1 2; do
  echo "graph (round $round): $(timeout 60 .bin/llmc bench /tmp/w/graph.plan --prompt-len 32 --gen 128 2>&1 | head -1)"
  echo "old persistent (round $round): $(timeout 60 .bin/llmc_main bench /tmp/w/old.plan --prompt-len 32 --gen 128 2>&1 | head -1)"
  echo "ring persistent (round $round): $(timeout 60 .bin/llmc bench /tmp/w/ring.plan --prompt-len 32 --gen 128 2>&1 | head -1)"
done
timeout 60 .bin/llmc bench /tmp/w/ring.plan --prompt-len 32 --gen 16 --trace $OUT/ring-trace.json 2>&1 | tail -2
python3 bench/trace_summary.py $OUT/ring-trace.json 2>&1 | head -30
echo "== full scale, persistent"
timeout 150 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify --shapes qwen2.5-1.5b --decode persistent 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
