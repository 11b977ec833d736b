#!/usr/bin/env python3
"""Registers a thread and local-memory instructions (LDL/STL: spills, or arrays indexed at run
time) of every decode kernel, as NVRTC builds them for sm_90a; no GPU. Registers decide how
many blocks an SM holds (65,536 a SM: a 128-thread GEMV block at 114 registers leaves room for
four; at 129 only three), and so whether the next kernel's blocks can start before their wait.

  python3 bench/kernel_registers.py kernels --nvrtc-lib DIR --nvdisasm PATH [--define GEMV_BATCH=20]
"""
import argparse
import re
import struct

from sass_wait_order import cubin, disassemble

EIATTR_REGCOUNT = 0x2F


def sections(image):
    """(name, type, offset, size) of each ELF64 section."""
    shoff = struct.unpack_from("<Q", image, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", image, 0x3A)
    raw = [struct.unpack_from("<IIQQQQII", image, shoff + i * shentsize) for i in range(shnum)]
    names = raw[shstrndx][4]
    string = lambda base, at: image[base + at:image.index(b"\0", base + at)].decode()
    return [(string(names, r[0]), r[1], r[4], r[5], r[6]) for r in raw]


def registers(image):
    """{kernel: registers a thread}, from the EIATTR_REGCOUNT attributes of .nv.info."""
    secs = sections(image)
    symtab = next(s for s in secs if s[1] == 2)  # SHT_SYMTAB
    strtab = secs[symtab[4]][2]
    symbol = lambda i: image[strtab + struct.unpack_from("<I", image, symtab[2] + 24 * i)[0]:].split(b"\0", 1)[0].decode()
    found = {}
    for name, _, off, size, _ in secs:
        if not name.startswith(".nv.info"):
            continue
        p = off
        while p < off + size:
            fmt, attr = image[p], image[p + 1]
            if fmt == 0x04:  # EIFMT_SVAL: a 16-bit size, then the value
                length = struct.unpack_from("<H", image, p + 2)[0]
                if attr == EIATTR_REGCOUNT:
                    index, count = struct.unpack_from("<II", image, p + 4)
                    found[symbol(index)] = count
                p += 4 + length
            elif fmt == 0x03:  # EIFMT_HVAL: a 16-bit value
                p += 4
            else:
                p += 2
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tree", help="the kernel source directory")
    ap.add_argument("--nvrtc-lib", required=True, help="the folder of libnvrtc.so.13 (scripts/test.sh's NVRTC_LIB)")
    ap.add_argument("--nvdisasm", required=True, help="nvdisasm (pip download nvidia-cuda-nvdisasm)")
    ap.add_argument("--define", action="append", default=[], help="NAME=VALUE, as LLMC_EXPERIMENT_DEFINES sets (repeatable)")
    args = ap.parse_args()
    image = cubin(args.nvrtc_lib, args.tree, args.define)
    sass = disassemble(args.nvdisasm, image)
    local, kernel = {}, None
    for line in sass.split("\n"):
        m = re.match(r"\s*\.text\.(\w+):", line)
        if m:
            kernel = m.group(1)
        elif kernel and re.search(r"\b(LDL|STL)\b", line):
            local[kernel] = local.get(kernel, 0) + 1
    print(f"{'kernel':28s} {'registers':>9s} {'LDL/STL':>8s}")
    for name, count in sorted(registers(image).items()):
        if not name.startswith("prefill"):
            print(f"{name:28s} {count:9d} {local.get(name, 0):8d}")


if __name__ == "__main__":
    main()
