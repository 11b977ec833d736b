#!/usr/bin/env bash
# L2 round trips taken off each decode step's path (kernels: the persistent kernel's second
# counter poll before the signal, the residual loaded in linear's epilogue, qkv's position,
# bias and rotation computed after the dot products). Fixture tests on both decode paths, then
# the Qwen2.5-1.5B shape, graph and persistent, before (.bin/llmc_main) and after (.bin/llmc),
# two interleaved rounds, and a trace of the persistent kernel. .bin: llmc, llmc_main, cuda_vs_cpu.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/round-trips.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 matches_cpu_on_every_fixture 2>&1 | grep -E "^test |worst|panicked|result" | head -40
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
for b in llmc llmc_main; do
  .bin/$b compile /tmp/w/m -o /tmp/w/$b-graph.plan --weights bf16 2>&1 | tail -1 | cut -c1-40
  .bin/$b compile /tmp/w/m -o /tmp/w/$b-p.plan --weights bf16 --decode persistent 2>&1 | tail -1 | cut -c1-40
done
for round in 1 2; do
  for b in llmc_main llmc; do
    for path in graph p; do
      echo "[$b $path round $round] $(timeout 60 .bin/$b bench /tmp/w/$b-$path.plan --prompt-len 32 --gen 128 2>&1 | head -1 | cut -c1-80)"
    done
  done
done
timeout 60 .bin/llmc bench /tmp/w/llmc-p.plan --prompt-len 32 --gen 128 --trace $OUT/trace.json 2>&1 | tail -1
python3 bench/trace_summary.py $OUT/trace.json --attention | grep -E "one decode|attention|qkv|linear_res|gate_up|lm_head|layers.(1|14|27).attn "
