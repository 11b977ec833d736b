#!/usr/bin/env bash
# The persistent kernel's weight ring with L2 prefetch of PK_L2_AHEAD pieces past its stages
# (experiment define), Qwen2.5-1.5B shape, graph beside it in the same call; bench + trace per kind.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee $OUT/ring-l2-ahead.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
.bin/llmc compile /tmp/w/m -o /tmp/w/graph.plan --weights bf16 2>&1 | tail -1 | cut -c1-20
echo "graph: $(timeout 60 .bin/llmc bench /tmp/w/graph.plan --prompt-len 32 --gen 128 2>&1 | head -1 | cut -c1-60)"
for d in 0 4 8 16 24; do
  LLMC_EXPERIMENT_DEFINES="PK_L2_AHEAD=$d" .bin/llmc compile /tmp/w/m -o /tmp/w/r.plan --weights bf16 --decode persistent 2>&1 | tail -1 | cut -c1-20
  echo "[PK_L2_AHEAD=$d] $(timeout 60 .bin/llmc bench /tmp/w/r.plan --prompt-len 32 --gen 128 --trace /tmp/t.json 2>&1 | head -1 | cut -c1-60)"
  python3 bench/trace_summary.py /tmp/t.json 2>&1 | grep -E "one decode|gate_up|lm_head|linear_res|qkv|attention"
done
