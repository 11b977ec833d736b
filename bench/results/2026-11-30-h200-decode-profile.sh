#!/usr/bin/env bash
# Profile: every kernel of a q4_k / q8_0 decode (ncu, boost clocks, warm caches), and SASS-level
# instruction counts of layer 1's _q GEMVs (q4_k). Ran at 2968832 (section 10, run 2, of
# 2026-11-30-h200-quantized-gemv-experiments.log); its summary: python3 bench/ncu_step_summary.py all_*.csv.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee $OUT/prof.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
for w in q4_k q8_0; do
  .bin/llmc compile /tmp/w/m -o /tmp/w/$w.plan --quantize $w 2>&1 | tail -1 | cut -c1-60
  timeout 200 ncu --clock-control none --cache-control none --launch-count 900 --metrics gpu__time_duration.sum,smsp__inst_executed.sum,dram__bytes_read.sum,launch__grid_size,launch__block_size --csv .bin/llmc run /tmp/w/$w.plan --prompt-ids 1,2,3,4,5,6,7,8 --max-tokens 3 --ignore-eos 2>/dev/null | grep -v "^==" > $OUT/all_$w.csv
  echo "$w: $(wc -l < $OUT/all_$w.csv) csv lines"
done
timeout 200 ncu --clock-control none --cache-control none -k "regex:^(linear|gate_up_silu|qkv_rope)_q$" --launch-skip 4 --launch-count 4 --section SourceCounters --section WarpStateStats -o $OUT/src .bin/llmc run /tmp/w/q4_k.plan --prompt-ids 1,2,3,4,5,6,7,8 --max-tokens 2 --ignore-eos > /dev/null 2>&1
ls -la $OUT
for k in qkv_rope_q linear_q gate_up_silu_q; do
  ncu -i $OUT/src.ncu-rep -k $k --page source --csv --print-source sass > $OUT/sass_$k.csv 2>&1; echo "$k $(wc -l < $OUT/sass_$k.csv)"
done
ncu -i $OUT/src.ncu-rep --page details --csv > $OUT/details.csv 2>&1
