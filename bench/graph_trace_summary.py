#!/usr/bin/env python3
"""Where a graph decode step's time goes, from `llmc bench PLAN --trace t.json` on a graph plan
compiled with LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" (every block's start, wait return and
exit; src/exec/cuda/block_trace.rs). The step is a chain: each kernel's wait returns once the
previous kernel has finished, so each launch owns the time from the previous launch's last block
leaving to its own last block leaving, split into
  handoff: until its first wait returned (the previous grid's completion reaching it),
  work:    from then until its last block left.
Blocks that start after the handoff (no room for them on the SMs before) show as late starts.

  python3 bench/graph_trace_summary.py t.json [--launches 12]
"""
import argparse
import gzip
import json
from collections import Counter, OrderedDict


def launches(rows):
    """Per launch: kernel, label, blocks, first/last start, first wait return, first/last exit (ns)."""
    by = OrderedDict()
    for r in sorted(rows, key=lambda r: r["launch"]):
        by.setdefault(r["launch"], []).append(r)
    out = []
    for i, blocks in by.items():
        waits = [b["waited_ns"] for b in blocks if b["waited_ns"] is not None]
        out.append({
            "launch": i,
            "kernel": blocks[0]["kernel"],
            "label": blocks[0]["label"],
            "blocks": len(blocks),
            "sms": len({b["sm"] for b in blocks}),
            # the most blocks one SM ran (one after another past the four resident at once)
            "most_on_an_sm": max(Counter(b["sm"] for b in blocks).values()),
            "first_start": min(b["started_ns"] for b in blocks),
            "last_start": max(b["started_ns"] for b in blocks),
            "release": min(waits) if waits else None,
            "first_exit": min(b["left_ns"] for b in blocks),
            "last_exit": max(b["left_ns"] for b in blocks),
        })
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("--launches", type=int, default=12, help="launches to list one by one (from the second layer's first)")
    args = ap.parse_args()
    opener = gzip.open if args.trace.endswith(".gz") else open
    rows = json.load(opener(args.trace, "rt"))
    ls = launches(rows)
    total = ls[-1]["last_exit"] - ls[0]["first_start"]
    kinds = OrderedDict()
    prev_exit = ls[0]["first_start"]
    for l in ls:
        release = l["release"] if l["release"] is not None else l["first_start"]
        handoff = max(0, release - prev_exit)
        work = l["last_exit"] - max(release, prev_exit)
        l["handoff"], l["work"] = handoff, work
        # a kernel that runs in both halves of a layer (linear: o_proj, down) is counted per half
        part = l["label"].rsplit(".", 1)[-1] if l["label"].startswith("layers.") else ""
        k = kinds.setdefault(f"{l['kernel']} {part}".strip(), {"n": 0, "handoff": 0, "work": 0, "late": 0})
        k["n"] += 1
        k["handoff"] += handoff
        k["work"] += work
        k["late"] += max(0, l["last_start"] - release)
        prev_exit = l["last_exit"]
    print(f"step: {len(ls)} launches, {total / 1e3:.1f} us from the first block's start to the last block's exit")
    print(f"{'kernel (layer part)':20s} {'launches':>8s} {'handoff us':>11s} {'work us':>9s} {'share':>6s} {'per launch':>17s} {'late starts us':>15s}")
    for name, k in sorted(kinds.items(), key=lambda kv: -(kv[1]["handoff"] + kv[1]["work"])):
        own = k["handoff"] + k["work"]
        print(f"{name:20s} {k['n']:8d} {k['handoff'] / 1e3:11.1f} {k['work'] / 1e3:9.1f} {100 * own / total:5.1f}% "
              f"{k['handoff'] / k['n'] / 1e3:7.2f} + {k['work'] / k['n'] / 1e3:6.2f} {k['late'] / k['n'] / 1e3:15.2f}")
    handoffs = sum(l["handoff"] for l in ls)
    print(f"handoffs in all: {handoffs / 1e3:.1f} us ({100 * handoffs / total:.1f}%)")
    layer = next((i for i, l in enumerate(ls) if ".1." in l["label"] or "layers.1" in l["label"]), 0)
    # Where the post-wait chain goes: per kernel, medians over its blocks that passed the marks
    # (trace_mark: GEMVs x staged / first rows summed, attention q loaded / P.V done, the fused
    # MLP gate/up done / down done), in us after the block's own wait returned.
    marked = OrderedDict()
    for r in rows:
        if r.get("marks_ns") and r["waited_ns"] is not None:
            part = r["label"].rsplit(".", 1)[-1] if r["label"].startswith("layers.") else ""
            m = marked.setdefault(f"{r['kernel']} {part}".strip(), [[], [], []])
            for i, t in enumerate(r["marks_ns"]):
                if t is not None:
                    m[i].append(t - r["waited_ns"])
            m[2].append(r["left_ns"] - r["waited_ns"])
    if any(m[0] or m[1] for m in marked.values()):
        med = lambda v: f"{sorted(v)[len(v) // 2] / 1e3:7.2f}" if v else "      -"
        print(f"\nafter a block's wait, us (median over blocks): {'mark 0':>7s} {'mark 1':>7s} {'exit':>7s}")
        for name, m in marked.items():
            print(f"{name:20s} {' ' * 23}{med(m[0])} {med(m[1])} {med(m[2])}")
    print(f"\nlaunches from {layer} (us from the step's start): first start, last start, release, first exit, last exit; handoff, work")
    for l in ls[layer:layer + args.launches]:
        us = lambda v: f"{v / 1e3:8.2f}" if v is not None else "       -"
        print(f"{l['launch']:4d} {l['kernel']:14s} {l['blocks']:5d} blocks {l['sms']:3d} SMs (<= {l['most_on_an_sm']} each) {us(l['first_start'])} {us(l['last_start'])} "
              f"{us(l['release'])} {us(l['first_exit'])} {us(l['last_exit'])}; {l['handoff'] / 1e3:5.2f} {l['work'] / 1e3:6.2f}  {l['label']}")


if __name__ == "__main__":
    main()
