#!/usr/bin/env bash
# Decode attention's arithmetic (kernels/attention.cu): scores two heads at a time with unrolled
# shuffle levels, and the warps' per-head sums a round of heads per two barriers instead of one
# head. Fixture tests on both paths, then the Qwen2.5-1.5B shape before (.bin/llmc_prev, 4127fb3)
# and after (.bin/llmc), two interleaved rounds, compute-sanitizer on the persistent path with
# splits, full scale vs transformers f32 (persistent). .bin: llmc, llmc_prev, cuda_vs_cpu.
# Measured slower (graph 1.357-1.366 -> 1.396-1.399, persistent 1.364 -> 1.381-1.385 ms/token),
# so not kept: the change is -attention-heads.diff beside this script.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/attention-heads.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"
timeout 100 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 matches_cpu_on_every_fixture 2>&1 | grep -E "min chunk 8|panicked|result" | head -20
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
for b in llmc llmc_prev; do
  .bin/$b compile /tmp/w/m -o /tmp/w/$b-graph.plan --weights bf16 2>&1 | tail -1 | cut -c1-30
  .bin/$b compile /tmp/w/m -o /tmp/w/$b-p.plan --weights bf16 --decode persistent 2>&1 | tail -1 | cut -c1-30
done
for round in 1 2; do
  for b in llmc_prev llmc; do
    for path in graph p; do echo "[$b $path round $round] $(timeout 40 .bin/$b bench /tmp/w/$b-$path.plan --prompt-len 32 --gen 128 2>&1 | head -1 | cut -c1-70)"; done
  done
done
for path in graph p; do echo "[llmc $path prompt 1024] $(timeout 40 .bin/llmc bench /tmp/w/llmc-$path.plan --prompt-len 1024 --gen 128 2>&1 | head -1 | cut -c1-70)"; done
LLMC_ATTN_MIN_CHUNK=8 .bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/fp.plan --max-seq-len 64 --decode persistent 2>&1 | tail -1 | cut -c1-30
for tool in memcheck racecheck; do
  echo "== compute-sanitizer $tool, persistent, qwen3_untied, 20-token prompt, splits of 8"
  LLMC_ATTN_MIN_CHUNK=8 timeout 40 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fp.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
rm -rf /tmp/w
timeout 90 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify --shapes qwen2.5-1.5b --decode persistent 2>&1 | grep -E "llmc vs hf f32|Error|error" | head -3
