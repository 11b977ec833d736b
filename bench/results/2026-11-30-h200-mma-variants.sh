#!/usr/bin/env bash
# The runs behind section 9 of 2026-11-30-h200-quantized-gemv-experiments.log (tensor-core GEMV variants,
# each built here and carried in .bin with the cuda_vs_cpu test binary): the block-format GPU test, then
# decode of --quantize q4_k / q8_0 plans of a random Qwen2.5-1.5B and ncu of the first layer's _q kernels.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/dev.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"
timeout 170 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 block_format 2>&1 | grep -E "^test |worst|panicked|result|error" | head -40
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
M=gpu__time_duration.sum,dram__bytes_read.sum,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__issue_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,launch__grid_size,launch__block_size,launch__block_size
for w in q4_k q8_0; do
  .bin/llmc compile /tmp/w/m -o /tmp/w/$w.plan --quantize $w 2>&1 | tail -1 | cut -c1-70
  echo "$w: $(timeout 60 .bin/llmc bench /tmp/w/$w.plan --prompt-len 32 --gen 128 2>&1 | head -3 | tr '\n' ' ')"
  timeout 100 ncu -k "regex:^(linear|gate_up_silu|qkv_rope|lm_head)_q$" --launch-skip 1 --launch-count 5 --metrics $M --csv .bin/llmc run /tmp/w/$w.plan --prompt-ids 1,2,3,4,5,6,7,8 --max-tokens 2 --ignore-eos 2>/dev/null | grep -v "^==" > $OUT/ncu_$w.csv
  python3 - $OUT/ncu_$w.csv <<'PY'
import csv, sys, collections
rows = list(csv.DictReader(l for l in open(sys.argv[1]) if l.strip()))
by = collections.OrderedDict()
for r in rows:
    by.setdefault((r["ID"], r["Kernel Name"]), {})[r["Metric Name"]] = r["Metric Value"]
for (i, name), m in by.items():
    v = {k.split("__")[-1][:18]: float(x.replace(",", "")) for k, x in m.items()}
    print(i, name[:16], " ".join(f"{k}={x:.4g}" for k, x in v.items()))
PY
done
