#!/usr/bin/env bash
# #13: does a cold instruction cache explain the ~1.5 us phases after each kernel's wait (x staged,
# first rows summed: ~160 and ~400 instructions a warp)? bench/micro/icache.cu times a block's
# straight-line code cold and warm, for bodies of 512, 1,024 and 4,096 FFMA.
# Result (17:25 UTC, -icache.log): a warp's cold code costs ~11 cycles a 128-byte line (~0.7 a
# 16-byte instruction) over warm, from L2 (the first launch and a launch after other code alike):
# 1,024 FFMA 2,458 cycles cold against 1,050 warm. For a ~400-instruction phase after a wait that
# is ~300 cycles (~0.15 us at 1.98 GHz): a small part of the ~1.5 us phases, not their cause.
set -uo pipefail
exec > >(tee $OUT/icache.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"; nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
for body in 512 1024 4096; do
  nvcc -O3 -arch=sm_90 -DBODY=$body -o /tmp/icache-$body bench/micro/icache.cu && /tmp/icache-$body
done
echo "done $(date -u +%T)"
