#!/usr/bin/env python3
"""The innermost loops of a decode kernel as ptxas made them: for each loop whose body holds
tensor-core (HMMA) or f32 FMA work, its instructions by opcode, so the cost of a GEMV's chunk
loop (address arithmetic, dequantization, the dot products) can be read without a GPU. NVRTC
compiles the kernels as `llmc compile --target sm_90` does (bench/sass_wait_order.py), nvdisasm
disassembles them; a loop is a backward branch and the instructions from its target to it.

  python3 bench/kernel_loops.py kernels --kernel linear_q --nvrtc-lib DIR --nvdisasm PATH [--define N=V]

A kernel with several instantiations (the `_q` kernels: one per block format) lists each loop;
tell them apart by their HMMA count (a batch of chunks: Q8_0 2 a chunk and 6 chunks, Q4_0 2 a
chunk and 4 chunks, the K-quants 4 a chunk and 3 chunks, Q6_K 4 a chunk and 4 chunks: quant.cu's
BATCH of each format).
"""
import argparse
import re
from collections import Counter

from sass_wait_order import cubin, disassemble

INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)")


def functions(sass):
    """{kernel: its SASS lines}."""
    out, name = {}, None
    for line in sass.split("\n"):
        m = re.match(r"\s*\.text\.(\w+):", line)
        if m:
            name = m.group(1)
            out[name] = []
        elif name:
            out[name].append(line)
    return out


def innermost_loops(lines):
    """(body opcodes) of each loop that contains no other loop, in address order."""
    labels = {m.group(1): i for i, l in enumerate(lines) if (m := re.match(r"\s*(\.L_x_\d+):", l))}
    loops = []
    for i, line in enumerate(lines):
        m = re.search(r"\bBRA\b.*`\((\.L_x_\d+)\)", line)
        if m and labels.get(m.group(1), i) < i:
            loops.append((labels[m.group(1)], i))
    inner = [(a, b) for a, b in loops if not any(a <= c and d <= b and (c, d) != (a, b) for c, d in loops)]
    return [[m.group(2) for l in lines[a:b + 1] if (m := INSTRUCTION.search(l))] for a, b in sorted(inner)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tree", help="the kernel source directory")
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--nvrtc-lib", required=True, help="the folder of libnvrtc.so.13 (scripts/test.sh's NVRTC_LIB)")
    ap.add_argument("--nvdisasm", required=True, help="nvdisasm (pip download nvidia-cuda-nvdisasm)")
    ap.add_argument("--define", action="append", default=[], help="NAME=VALUE, as LLMC_EXPERIMENT_DEFINES sets (repeatable)")
    args = ap.parse_args()
    sass = disassemble(args.nvdisasm, cubin(args.nvrtc_lib, args.tree, args.define))
    lines = functions(sass)[args.kernel]
    print(f"{args.kernel}: {sum(bool(INSTRUCTION.search(l)) for l in lines)} instructions")
    for body in innermost_loops(lines):
        ops = Counter(body)
        if ops["HMMA"] or ops["FFMA"] >= 8:
            top = ", ".join(f"{op} {n}" for op, n in ops.most_common())
            print(f"loop of {len(body)} instructions, {ops['HMMA']} HMMA, {ops['LDG']} LDG: {top}")


if __name__ == "__main__":
    main()
