#!/usr/bin/env python3
"""Stall reasons per kernel launch from an Nsight Compute CSV (`ncu --metrics ... --csv`) whose
metrics include smsp__average_warps_issue_stalled_<reason>_per_issue_active.ratio for several
reasons, gpu__time_duration.sum and smsp__issue_active.avg.pct_of_peak_sustained_active: each
launch's time, issue activity and its four largest stall reasons as shares of the listed ones
(the device scripts bench/results/2026-12-02-h200-{first-bench,variants-ncu}.sh write the CSV).

  python3 bench/ncu_stalls.py ncu.csv
"""
import collections
import csv
import sys

STALL = "smsp__average_warps_issue_stalled_"
PER_ISSUE = "_per_issue_active.ratio"


def main(path):
    rows = list(csv.DictReader(line for line in open(path) if line.strip() and not line.startswith("==")))
    launches = collections.OrderedDict()
    for r in rows:
        launches.setdefault((r["ID"], r["Kernel Name"]), {})[r["Metric Name"]] = float(r["Metric Value"].replace(",", ""))
    for (launch, name), m in launches.items():
        stalls = {k[len(STALL):-len(PER_ISSUE)]: v for k, v in m.items() if k.startswith(STALL) and k.endswith(PER_ISSUE)}
        total = sum(stalls.values()) or 1.0
        top = sorted(stalls.items(), key=lambda kv: -kv[1])[:4]
        print(launch, name[:12], f"{m.get('gpu__time_duration.sum', 0):.0f} ns",
              f"issue {m.get('smsp__issue_active.avg.pct_of_peak_sustained_active', 0):.1f}%",
              " ".join(f"{k} {v / total:.0%}" for k, v in top))


if __name__ == "__main__":
    main(sys.argv[1])
