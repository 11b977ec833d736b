#!/usr/bin/env python3
"""Time per kernel name from an ncu CSV of `--metrics gpu__time_duration.sum` (each kernel alone).

    python3 bench/ncu_kernel_totals.py run.csv "32-token q4_k prefill + 1 decode step"
"""
import collections
import csv
import sys

SCALE = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}

rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]
k, v, u = head.index("Kernel Name"), head.index("Metric Value"), head.index("Metric Unit")
total, count = collections.Counter(), collections.Counter()
for r in rows[1:]:
    name = r[k].split("(")[0]
    total[name] += float(r[v].replace(",", "")) * SCALE[r[u]]
    count[name] += 1
s = sum(total.values())
print(f"{sys.argv[2] if len(sys.argv) > 2 else sys.argv[1]}, each kernel alone: {s / 1e3:.2f} ms in {sum(count.values())} kernels")
for name, us in total.most_common():
    print(f"  {name:28s} {count[name]:4d} x {us / count[name]:8.1f} us = {us / 1e3:7.2f} ms ({100 * us / s:4.1f}%)")
