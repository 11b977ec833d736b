#!/usr/bin/env python3
"""Where a kernel's global loads fall around its grid-dependency wait, in the SASS ptxas made:
for each `griddepcontrol.wait` (SASS `ACQBULK`) of the named kernels, the loads (LDG, by kind)
since the previous wait and the first loads after it, for the kernels of one or two source trees
side by side. No GPU: NVRTC compiles every kernel file as `llmc compile --target sm_90` does
(sm_90a), nvdisasm (the PyPI wheel nvidia-cuda-nvdisasm) disassembles the CUBIN.

Why: a load written after the wait in the source may be hoisted above it by ptxas when it is
`ld.global.nc` (`__ldg`, GridWait::load until 2026-12-01), which the compiler may treat as never
changing during the kernel: a677c8f's residual loads did exactly that (one `LDG.E.CONSTANT` more
before each `ACQBULK` of linear_q than at its parent, none after; its q8_0 decode read stale
residuals, bench/results/2026-11-30-h200-a677c8f-q8_0.log), while the same load as `__ldcg` stays
after the wait (`LDG.E.STRONG.GPU` first after it), as does `__ldca` (`LDG.E.STRONG.SM`),
GridWait::load since. A load of an earlier kernel's output must be after the wait in the SASS,
not only in the source.

  python3 bench/sass_wait_order.py kernels [OTHER_KERNELS_DIR] --kernels linear_q,qkv_rope_q \
      --nvrtc-lib DIR --nvdisasm PATH
"""
import argparse
import ctypes
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def kernel_files():
    """The kernel files in src/kernels.rs's SOURCES order, and its HEADERS."""
    text = open(os.path.join(HERE, "..", "src", "kernels.rs")).read()
    sources = re.findall(r'\("([\w.]+\.cu)", include_str!', text)
    headers = re.findall(r'\("([\w.]+\.cuh)", include_str!', text)
    return sources, headers


def cubin(nvrtc_lib, directory, defines=()):
    """The CUBIN of every kernel file in `directory`, with `defines` (NAME=VALUE) as -D options."""
    sources, headers = kernel_files()
    # NVRTC opens its builtins library by name at compile time: loaded first, it is found
    ctypes.CDLL(os.path.join(nvrtc_lib, "libnvrtc-builtins.so.13.0"), mode=ctypes.RTLD_GLOBAL)
    lib = ctypes.CDLL(os.path.join(nvrtc_lib, "libnvrtc.so.13"))
    names = headers + sources
    texts = [open(os.path.join(directory, n), "rb").read() for n in names]
    unit = "".join(f'#include "{n}"\n' for n in sources).encode()
    prog = ctypes.c_void_p()
    strings = ctypes.c_char_p * len(names)
    lib.nvrtcCreateProgram(ctypes.byref(prog), unit, b"llmc_kernels.cu", len(names), strings(*texts), strings(*[n.encode() for n in names]))
    opts = [b"--gpu-architecture=sm_90a", b"--std=c++17"] + [f"-D{d}".encode() for d in defines]
    status = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    size = ctypes.c_size_t()
    if status != 0:
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        sys.exit(f"{directory}: NVRTC failed:\n{log.value.decode()[:4000]}")
    lib.nvrtcGetCUBINSize(prog, ctypes.byref(size))
    image = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetCUBIN(prog, image)
    return image.raw


def disassemble(nvdisasm, image):
    """The SASS text of a CUBIN image."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(image)
        f.flush()
        return subprocess.run([nvdisasm, "-c", f.name], check=True, capture_output=True, text=True).stdout


def waits(sass, kernel):
    """Per wait of `kernel`: (instruction index, {load kind: count since the previous wait}, first loads after it)."""
    start = sass.index(f".text.{kernel}:")
    end = sass.find("//---------------------", start)
    body = [line.split("*/", 1)[1].strip() for line in sass[start:end].split("\n") if re.search(r"/\*[0-9a-f]{4,}\*/", line)]
    load = re.compile(r"(@!?U?P\w+\s+)?(LDG\S*)")
    rows, previous = [], 0
    for at in [n for n, line in enumerate(body) if line.startswith("ACQBULK") or " ACQBULK" in line]:
        kinds = {}
        for line in body[previous:at]:
            m = load.match(line)
            if m:
                kinds[m.group(2)] = kinds.get(m.group(2), 0) + 1
        after = [load.match(line).group(2) for line in body[at:at + 40] if load.match(line)]
        rows.append((at, kinds, after[:3]))
        previous = at
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trees", nargs="+", help="one or two kernel source directories")
    ap.add_argument("--kernels", default="linear,linear_q,qkv_rope,qkv_rope_q,gate_up_silu,gate_up_silu_q")
    ap.add_argument("--nvrtc-lib", required=True, help="the folder of libnvrtc.so.13 (scripts/test.sh's NVRTC_LIB)")
    ap.add_argument("--nvdisasm", required=True, help="nvdisasm (pip download nvidia-cuda-nvdisasm)")
    ap.add_argument("--define", action="append", default=[], help="NAME=VALUE, as LLMC_EXPERIMENT_DEFINES sets (repeatable)")
    args = ap.parse_args()
    sass = [disassemble(args.nvdisasm, cubin(args.nvrtc_lib, tree, args.define)) for tree in args.trees]
    for kernel in args.kernels.split(","):
        for tree, text in zip(args.trees, sass):
            print(f"{kernel} ({tree}):")
            for at, kinds, after in waits(text, kernel):
                before = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
                print(f"  wait at instruction {at}: loads since the previous wait: {before or 'none'}; first after: {', '.join(after) or 'none'}")


if __name__ == "__main__":
    main()
