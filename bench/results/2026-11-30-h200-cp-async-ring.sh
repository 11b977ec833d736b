#!/usr/bin/env bash
# The persistent kernel's GEMVs stream weights through a per-lane shared-memory ring (cp.async,
# two batches a warp in flight; gemv.cu Bf16Ring) instead of one register batch. Fixture tests
# of the persistent path, then the Qwen2.5-1.5B shape: graph, persistent before (.bin/llmc_prev,
# bf9560c) and after (.bin/llmc), two interleaved rounds at prompt 32 and one at 4,096, and a
# trace. .bin: llmc, llmc_prev, cuda_vs_cpu. The ring's code is on branch persistent-cp-async-ring
# (measured slower: 1.74 vs 1.38 ms/token; not on main).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/cp-async-ring.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 matches_cpu_on_every_fixture 2>&1 | grep -E "Persistent|panicked|result" | head -20
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
.bin/llmc compile /tmp/w/m -o /tmp/w/graph.plan --weights bf16 --max-seq-len 4352 2>&1 | tail -1 | cut -c1-40
.bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 4352 --decode persistent 2>&1 | tail -1 | cut -c1-40
.bin/llmc_prev compile /tmp/w/m -o /tmp/w/prev.plan --weights bf16 --max-seq-len 4352 --decode persistent 2>&1 | tail -1 | cut -c1-40
for round in 1 2; do
  echo "[graph round $round] $(timeout 60 .bin/llmc bench /tmp/w/graph.plan --prompt-len 32 --gen 128 2>&1 | head -1 | cut -c1-80)"
  echo "[persistent before round $round] $(timeout 60 .bin/llmc_prev bench /tmp/w/prev.plan --prompt-len 32 --gen 128 2>&1 | head -1 | cut -c1-80)"
  echo "[persistent ring round $round] $(timeout 60 .bin/llmc bench /tmp/w/p.plan --prompt-len 32 --gen 128 2>&1 | head -1 | cut -c1-80)"
done
echo "[graph 4096] $(timeout 60 .bin/llmc bench /tmp/w/graph.plan --prompt-len 4096 --gen 128 2>&1 | head -1 | cut -c1-80)"
echo "[persistent before 4096] $(timeout 60 .bin/llmc_prev bench /tmp/w/prev.plan --prompt-len 4096 --gen 128 2>&1 | head -1 | cut -c1-80)"
echo "[persistent ring 4096] $(timeout 60 .bin/llmc bench /tmp/w/p.plan --prompt-len 4096 --gen 128 2>&1 | head -1 | cut -c1-80)"
timeout 60 .bin/llmc bench /tmp/w/p.plan --prompt-len 32 --gen 128 --trace $OUT/trace.json 2>&1 | tail -1
python3 bench/trace_summary.py $OUT/trace.json --attention | grep -E "one decode|attention|qkv|linear_res|gate_up|lm_head|layers.(1|14|27).attn "
