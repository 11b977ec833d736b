#!/usr/bin/env bash
# Where the weight ring's rate is capped: the bulk-copy ring alone (bench/probe/bulk_ring_bandwidth.cu,
# nothing computed) over stages / stage bytes / copy bytes, then the persistent kernel with
# device-only experiment defines (PKX_*: fewer stages, stages filled by 4 KiB copies, no L2 hint,
# the dot products skipped), each a bench and a trace's per-kind rates. The PKX_* knobs were
# working-tree edits on 4bbd5f5 (branch persistent-weight-ring), #ifdef'd around the ring's
# request, its stage count, the bulk copy's L2 hint and the GEMV's FMA loop; never committed.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee $OUT/ring-experiments.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"
nvcc -O3 -std=c++17 -arch=sm_90a bench/probe/bulk_ring_bandwidth.cu -o /tmp/brb && timeout 120 /tmp/brb
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
for defs in "" "PKX_STAGES=2" "PKX_STAGES=3" "PKX_COPY=4096" "PKX_NO_HINT=1" "PKX_SKIP_FMA=1"; do
  LLMC_EXPERIMENT_DEFINES="$defs" .bin/llmc compile /tmp/w/m -o /tmp/w/r.plan --weights bf16 --decode persistent 2>&1 | tail -1 | cut -c1-20
  echo "[$defs] $(timeout 60 .bin/llmc bench /tmp/w/r.plan --prompt-len 32 --gen 64 --trace /tmp/t.json 2>&1 | head -1 | cut -c1-60)"
  python3 bench/trace_summary.py /tmp/t.json 2>&1 | grep -E "gate_up|lm_head|linear_res|qkv"
done
