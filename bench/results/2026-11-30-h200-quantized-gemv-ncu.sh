#!/usr/bin/env bash
# ncu of one decode step's block-format GEMVs at 3b8052b (q4_k, q8_0), stall reasons included; .bin holds llmc
# built at that commit. Output: the last section of 2026-11-30-h200-quantized-gemv-experiments.log.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/prof2.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
S=smsp__average_warps_issue_stalled
M=gpu__time_duration.sum,dram__bytes_read.sum,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__issue_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,launch__registers_per_thread,${S}_long_scoreboard_per_issue_active.ratio,${S}_short_scoreboard_per_issue_active.ratio,${S}_no_instruction_per_issue_active.ratio,${S}_wait_per_issue_active.ratio,${S}_math_pipe_throttle_per_issue_active.ratio,${S}_lg_throttle_per_issue_active.ratio,${S}_barrier_per_issue_active.ratio,${S}_not_selected_per_issue_active.ratio,${S}_mio_throttle_per_issue_active.ratio,${S}_dispatch_stall_per_issue_active.ratio
for w in q4_k q8_0; do
  .bin/llmc compile /tmp/w/m -o /tmp/w/$w.plan --quantize $w 2>&1 | tail -1 | cut -c1-60
  echo "== $w"
  timeout 100 ncu -k "regex:^(linear|gate_up_silu|qkv_rope|lm_head)_q$" --launch-skip 1 --launch-count 5 --metrics $M --csv .bin/llmc run /tmp/w/$w.plan --prompt-ids 1,2,3,4,5,6,7,8 --max-tokens 2 --ignore-eos 2>/dev/null | grep -v "^==" > $OUT/ncu_$w.csv
  python3 - $OUT/ncu_$w.csv <<'PY'
import csv, sys, collections
rows = list(csv.DictReader(l for l in open(sys.argv[1]) if l.strip()))
by = collections.OrderedDict()
for r in rows:
    by.setdefault((r["ID"], r["Kernel Name"]), {})[r["Metric Name"]] = r["Metric Value"]
for (i, name), m in by.items():
    v = {k.replace("smsp__average_warps_issue_stalled_", "stall_").replace("_per_issue_active.ratio", "").split("__")[-1][:24]: float(x.replace(",", "")) for k, x in m.items()}
    print(i, name[:16], " ".join(f"{k}={x:.4g}" for k, x in v.items()))
PY
done
