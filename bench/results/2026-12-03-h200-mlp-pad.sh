#!/usr/bin/env bash
# #13: why did stashing gate/up tasks in shared memory (-mlp-stash.log) slow the MLP's streaming
# after the release? Hypothesis: a block's shared memory shrinks the L1 that its loads in flight
# need. The fused MLP with unused shared memory (LLMC_MLP_PAD=bytes: 96 and 192 KiB) and no
# stash, against no pad and LLMC_MLP_STASH=1; and main's binary (b7535b3: no stash code, 96 KiB
# max attribute), whose 1,024-token figure was 1.229-1.231 yesterday against 1.250-1.258 for the
# branch today. Three interleaved rounds, random Qwen2.5-1.5B shape, bf16, 128 tokens after 32
# and 1,024. .bin: llmc (branch), llmc-main, COMMIT.
# Code: main (b7535b3) + -mlp-stash.patch.
# Result (17:46 UTC, -mlp-pad.log), ms/token after 32 / 1,024, three rounds: main 1.114-1.119 /
# 1.229-1.233; branch, no pad 1.113-1.117 / 1.251-1.254; 96 KiB 1.111-1.117 / 1.250-1.254; 192 KiB
# 1.222-1.224 / 1.381-1.383; stash 1 1.170-1.179 / 1.292-1.297. So 96 KiB of shared memory costs
# the MLP nothing and 192 KiB costs 10% (L1 left to its loads in flight: ~28 KiB); stash 1's loss
# is not its shared memory but the copies themselves. The branch loses 1.8% after 1,024 against
# main at no stash and no pad (not explained: its MLP code, or the 216 KiB attribute).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/mlp-pad.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
timeout -s KILL 120 .bin/llmc-main compile /tmp/w/m -o /tmp/w/main.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for v in "main llmc-main main 0 0" "pad0 llmc p 0 0" "pad96k llmc p 98304 0" "pad192k llmc p 196608 0" "stash1 llmc p 0 1"; do
    set -- $v
    echo "[$1, round $r] $(LLMC_MLP_PAD=$4 LLMC_MLP_STASH=$5 timeout -s KILL 60 .bin/$2 bench /tmp/w/$3.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-60 | tr '\n' ' ')"
  done
done
echo "done $(date -u +%T)"
