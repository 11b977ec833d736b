#!/usr/bin/env bash
# Device call (H200, 14:57 UTC), on the machine still warm from 2026-11-30-h200-wgmma-tiles.sh (its
# /tmp/w/*.plan: main 0ff2c2d as .bin/llmc, ffbc868 as .bin/llmc_w): decode unchanged? Two rounds.
# Output (inline, no log file):
#   llmc:   706.0 / 706.2 tok/s   llmc_w: 699.2 / 697.7 tok/s  (read-only roofline 4,101-4,103 GB/s host-timed on
#   main; 4,557-4,558 event-timed on ffbc868)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}; ls /tmp/w/ 2>&1 | head; for r in 1 2; do for b in llmc llmc_w; do echo "$b: $(timeout 40 .bin/$b bench /tmp/w/$b.plan --prompt-len 32 --gen 64 2>&1 | head -3 | grep -o 'ms/token.*GB/s)' | head -1)"; done; done
