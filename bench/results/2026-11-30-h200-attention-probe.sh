#!/usr/bin/env bash
# Where an active attention unit's ~7 us inside the persistent kernel go: a temporary build
# (ATTN_PROBE=k, see the log's header) stamps the time thread 0 passes point k of attention_unit
# into the instruction's "started" trace slot: 1 q staged (K/V row at pos and q loaded), 2 scores,
# 3 softmax, 4 P.V and its shuffles, 5 the per-head sums written, 6 the last-block ticket taken.
# Per point: median and max of (point - waits met) over the active units of every layer.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee $OUT/attention-probe.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
for k in 1 2 3 4 5 6; do
  LLMC_EXPERIMENT_DEFINES="ATTN_PROBE=$k" .bin/llmc compile /tmp/w/m -o /tmp/w/p$k.plan --weights bf16 --decode persistent 2>&1 | tail -1 | cut -c1-30
  for chunk in 16 64; do
    LLMC_ATTN_MIN_CHUNK=$chunk timeout 60 .bin/llmc bench /tmp/w/p$k.plan --prompt-len 32 --gen 128 --trace $OUT/t$k-$chunk.json 2>&1 | head -1 | cut -c1-50
    python3 - $OUT/t$k-$chunk.json $k $chunk <<'PY'
import json, sys, statistics as st
rows = json.load(open(sys.argv[1]))
att = [r for r in rows if r["kind"] == "attention" and r["signalled_ns"] - r["waited_ns"] > 1000]
by_step = {}
for r in att: by_step.setdefault(r["step"], []).append(r)
last = [max(v, key=lambda r: r["signalled_ns"]) for v in by_step.values()]
others = [r for r in att if r not in last]
f = lambda rs, key: (st.median(key(r) for r in rs) / 1e3, max(key(r) for r in rs) / 1e3) if rs else (0, 0)
pt = lambda r: r["started_ns"] - r["waited_ns"]
tot = lambda r: r["signalled_ns"] - r["waited_ns"]
print(f"point {sys.argv[2]} min chunk {sys.argv[3]}: non-last units point med/max {f(others, pt)[0]:.2f}/{f(others, pt)[1]:.2f} us, signal {f(others, tot)[0]:.2f}; last units point {f(last, pt)[0]:.2f}/{f(last, pt)[1]:.2f}, signal {f(last, tot)[0]:.2f}; {len(att)} active units")
PY
  done
done
