"""Where a persistent decode step's time goes, from `llmc bench --trace FILE` (in-kernel
timestamps of every instruction: started, waits met, signalled).
Usage: python3 bench/trace_summary.py TRACE.json[.gz] [--steps] [--attention]
Per step kind: the time from the previous step's last signal to this step's last signal (its
share of the critical path), the median work time of an instruction (waits met -> signalled),
the bandwidth its weight bytes imply over its critical-path time, and how long after a step's
first worker signalled its last one did (the spread that balanced bytes leave). --steps lists every step;
--attention, per attention step, its units that did work (longer than ACTIVE_NS: the others
found their slice past the position and returned) and how long they took."""
import gzip
import json
import statistics
import sys
from collections import defaultdict

# An attention unit past the position's active slices returns at once (~0.4 us in the traces);
# one that computes takes microseconds.
ACTIVE_NS = 1000

rows = json.load((gzip.open if sys.argv[1].endswith(".gz") else open)(sys.argv[1], "rt"))
steps = defaultdict(list)
for r in rows:
    steps[r["step"]].append(r)
order = sorted(steps)
span = max(r["signalled_ns"] for r in rows) - min(r["started_ns"] for r in rows)
by_kind = defaultdict(lambda: {"ns": 0, "bytes": 0, "work": [], "lag": [], "tail": [], "n": 0})
prev_end = min(r["started_ns"] for r in rows)
lines = []
for s in order:
    rs = steps[s]
    end = max(r["signalled_ns"] for r in rs)
    first_met = min(r["waited_ns"] for r in rs)
    k = by_kind[rs[0]["kind"]]
    k["ns"] += end - prev_end
    k["bytes"] += sum(r["weight_bytes"] for r in rs)
    k["work"] += [r["signalled_ns"] - r["waited_ns"] for r in rs]
    k["lag"].append(first_met - prev_end)  # previous step done -> first worker sees it
    k["tail"].append(end - min(r["signalled_ns"] for r in rs))  # first worker done -> last
    k["n"] += 1
    lines.append(f"  %{s:<4} {rs[0]['kind']:<16} {end - prev_end:>7} ns on the path, work median {statistics.median(r['signalled_ns'] - r['waited_ns'] for r in rs):>6} max {max(r['signalled_ns'] - r['waited_ns'] for r in rs):>6} ns, {len(rs)} instructions")
    prev_end = end
print(f"one decode step: {span / 1e3:.1f} us over {len(order)} steps, {len(rows)} instructions")
print(f"{'kind':<16} {'steps':>5} {'path us':>8} {'share':>6} {'GB/s on path':>12} {'work med us':>11} {'signal->seen med ns':>20} {'first->last signal med ns':>26}")
for kind, k in sorted(by_kind.items(), key=lambda kv: -kv[1]["ns"]):
    gbs = k["bytes"] / k["ns"] if k["ns"] else 0
    print(f"{kind:<16} {k['n']:>5} {k['ns'] / 1e3:>8.1f} {100 * k['ns'] / span:>5.1f}% {gbs:>12.0f} {statistics.median(k['work']) / 1e3:>11.2f} {statistics.median(k['lag']):>20.0f} {statistics.median(k['tail']):>26.0f}")
if "--steps" in sys.argv:
    print("\n".join(lines))
if "--attention" in sys.argv:
    print(f"{'attention step':<24} {'units':>5} {'active':>6} {'active work med us':>18} {'max us':>7} {'waits met -> last signal us':>28}")
    for s in order:
        rs = steps[s]
        if rs[0]["kind"] != "attention":
            continue
        work = sorted(r["signalled_ns"] - r["waited_ns"] for r in rs)
        active = [w for w in work if w > ACTIVE_NS]
        med = statistics.median(active) / 1e3 if active else 0.0
        span_us = (max(r["signalled_ns"] for r in rs) - min(r["waited_ns"] for r in rs)) / 1e3
        print(f"{rs[0]['label']:<24} {len(rs):>5} {len(active):>6} {med:>18.2f} {work[-1] / 1e3:>7.2f} {span_us:>28.2f}")
