#!/usr/bin/env bash
# The persistent kernel with attention units of 1, 2, 3 or 6 (the group, default) query heads,
# their splits capped at one unit a worker (so a worker never runs two of the first, active,
# splits one after another), against the graph path (one head a block): the fixture tests with
# one head a unit, then the Qwen2.5-1.5B shape after 32 (two rounds), 1,024 and 4,096 prompt
# tokens, and a trace of the one-head kernel. .bin: llmc, cuda_vs_cpu.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/persistent-unit-heads.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
LLMC_ATTN_UNIT_HEADS=1 timeout 100 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 cuda_matches_cpu_on_every_fixture 2>&1 | grep -E "Persistent|panicked|result" | head -20
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
.bin/llmc compile /tmp/w/m -o /tmp/w/graph.plan --weights bf16 --max-seq-len 4352 2>&1 | tail -1 | cut -c1-40
for uh in 1 2 3 6; do
  LLMC_ATTN_UNIT_HEADS=$uh .bin/llmc compile /tmp/w/m -o /tmp/w/p$uh.plan --weights bf16 --max-seq-len 4352 --decode persistent 2>&1 | tail -1 | cut -c1-40
done
for prompt in 32 32 1024 4096; do
  echo "[graph, prompt $prompt] $(timeout 60 .bin/llmc bench /tmp/w/graph.plan --prompt-len $prompt --gen 128 2>&1 | head -1 | cut -c1-80)"
  for uh in 1 2 3 6; do
    echo "[p, heads $uh, prompt $prompt] $(LLMC_ATTN_UNIT_HEADS=$uh timeout 60 .bin/llmc bench /tmp/w/p$uh.plan --prompt-len $prompt --gen 128 2>&1 | head -1 | cut -c1-80)"
  done
done
LLMC_ATTN_UNIT_HEADS=1 timeout 40 .bin/llmc bench /tmp/w/p1.plan --prompt-len 32 --gen 128 --trace $OUT/trace-1.json 2>&1 | tail -1 | cut -c1-30
python3 bench/trace_summary.py $OUT/trace-1.json --attention | grep -E -A8 "one decode" | head -20
python3 bench/trace_summary.py $OUT/trace-1.json --attention | grep -E "^attention step|layers.(1|14|27).attn "
