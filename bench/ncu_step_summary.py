#!/usr/bin/env python3
"""Per-kernel summary of one decode step from an ncu CSV (bench/results/2026-11-30-h200-decode-profile.sh
writes all_<weights>.csv: every kernel of a short `llmc run`, metrics gpu__time_duration.sum,
smsp__inst_executed.sum, dram__bytes_read.sum). The step is the kernels from the last `embedding*`
launch on; linear_q is split into o_proj and down by the bytes it reads (down reads more).

    python3 bench/ncu_step_summary.py all_q4_k.csv [all_q8_0.csv ...]
"""
import collections
import csv
import sys


def summarize(path):
    rows = list(csv.DictReader(line for line in open(path) if line.strip() and not line.startswith("==")))
    kernels = collections.OrderedDict()
    for r in rows:
        kernels.setdefault((int(r["ID"]), r["Kernel Name"]), {})[r["Metric Name"]] = float(r["Metric Value"].replace(",", ""))
    launches = list(kernels.items())
    start = max(i for i, ((_, name), _) in enumerate(launches) if name.startswith("embedding"))
    step = launches[start:]
    # linear / linear_q run o_proj and down: the larger reads are down's
    linear_bytes = sorted(m["dram__bytes_read.sum"] for (_, n), m in step if n.startswith("linear"))
    split = (linear_bytes[len(linear_bytes) // 2 - 1] + linear_bytes[len(linear_bytes) // 2]) / 2 if linear_bytes else 0
    totals = collections.OrderedDict()
    for (_, name), m in step:
        key = name
        if name.startswith("linear"):
            key = f"{name} ({'down' if m['dram__bytes_read.sum'] > split else 'o_proj'})"
        t = totals.setdefault(key, [0, 0.0, 0.0, 0.0])
        t[0] += 1
        t[1] += m["gpu__time_duration.sum"] / 1000
        t[2] += m["smsp__inst_executed.sum"]
        t[3] += m["dram__bytes_read.sum"]
    total_us = sum(v[1] for v in totals.values())
    print(f"== {path}: one decode step, {len(step)} kernels, serialized under ncu, sum {total_us:.0f} us")
    for name, (count, us, inst, dram) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        print(f"  {name:20s} x{count:3d}  {us:7.1f} us ({us / total_us * 100:4.1f}%)  {us / count:6.2f} us each  "
              f"{inst / count / 1e6:6.3f} M warp instr each  {dram / count / 1e6:7.2f} MB DRAM each")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        summarize(p)
