#!/usr/bin/env bash
# #13, a question for the next step: why do the fused MLP's blocks that start early (while
# attention_proj holds 48 SMs), their first 128 KiB of gate/up in registers before the wait,
# finish gate/up no sooner than those that start at the wait? Traced steps after 32 tokens with
# the MLP's marks moved (MLP_MARKS_STAGED, -mlp-marks.patch): mark 0 once x is staged and
# normalized, mark 1 once gate/up is done; the summary splits the blocks by start.
# .bin: llmc (31ef70b with the patch), COMMIT.
# Result (15:59 UTC, -mlp-marks.log): x is staged 1.4-2.0 us after the release in the blocks that
# started early (no loads of their own in flight then) and 1.8-2.8 in those that start at the
# wait; gate/up is done at 12.4-14.1 us in both, the early ones 0.3-1.2 us later. So staging x,
# one round trip to L2 and a barrier, costs ~1.5 us a launch (qkv_rope's mark 0, also x staged,
# is 1.4-1.7 us after its wait), and the 128 KiB in registers buy the early blocks nothing.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/mlp-marks.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
LLMC_EXPERIMENT_DEFINES="MLP_MARKS_STAGED=1 TRACE_BLOCKS=1" timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/t.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
for b in 0 132; do
  echo "[short-graph MLP blocks ${b/#0/default} traced] $(LLMC_SHORT_MLP_BLOCKS=$b timeout -s KILL 60 .bin/llmc bench /tmp/w/t.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/mlp-marks-$b.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
  python3 - $OUT/mlp-marks-$b.json <<'PY'
import json, sys, statistics as st
rows = json.load(open(sys.argv[1]))
for launch in sorted({r["launch"] for r in rows if r["kernel"] == "mlp"})[1:8]:
    blocks = [r for r in rows if r["launch"] == launch]
    release = min(r["waited_ns"] for r in blocks)
    for name, part in (("early", [r for r in blocks if r["started_ns"] < release - 1000]), ("at the wait", [r for r in blocks if r["started_ns"] >= release - 1000])):
        if not part:
            continue
        med = lambda f: st.median(f(r) for r in part) / 1e3
        print(f"{blocks[0]['label']:16s} {name:12s} {len(part):3d} blocks: x staged {med(lambda r: r['marks_ns'][0] - release):5.2f}, gate/up done {med(lambda r: r['marks_ns'][1] - release):5.2f}, exit {med(lambda r: r['left_ns'] - release):5.2f} us after the release (medians)")
PY
  gzip -9 $OUT/mlp-marks-$b.json
done
echo "done $(date -u +%T)"
