#!/usr/bin/env bash
# #13: qkv_rope spread over 128 SMs with attention_proj's blocks still fitting beside it.
# -wide-gemv.sh (blocks of 16 warps, 8 with tasks) cut qkv_rope's work from 5.66 to 3.55 us a
# layer, but its blocks held all of an SM's registers, so attention_proj's blocks could no longer
# start beside it and copy W_o before the wait: its handoff went 0.54 -> 4.88 us (1.19 against
# 1.115 ms/token). Here a block has 9 warps of at most 128 registers (36,864: one an SM, and
# attention_proj's 8 warps of 104 fit beside it: 63,488 of 65,536), 8 with tasks, so 128 blocks
# on 128 SMs; and 8 warps (32,768: two could share an SM). Plans compiled with GEMV_WIDE=1
# GEMV_WIDE_WARPS=W run with LLMC_WIDE=qkv_rope,linear LLMC_WIDE_WARPS=W (the long graph's o_proj
# likewise). verify_full_scale (W=9) after 32 and 1,024 tokens, three interleaved rounds on the
# random Qwen2.5-1.5B shape (bf16, 128 tokens after 32 and 1,024), a traced step.
# Code: d9640ef + -wide-qkv9.patch. .bin: llmc, COMMIT.
# Result (19:28 UTC, -wide-qkv9.log, -wide-qkv9.json.gz), ms/token after 32 / 1,024 tokens: main's
# plan 1.105-1.107 / 1.218-1.219; W=9 1.180-1.181 / 1.248-1.250 (attention_proj's blocks still did
# not start beside qkv_rope's: handoff 4.14 us); W=8 (128 registers, qkv_rope and the long graph's
# o_proj) 1.094-1.102 / 1.240-1.248. verify_full_scale (W=9) 3.19e-5 / 5.95e-5, no mismatch.
# Why 9 warps did not fit: presumably the SM's L1 / shared memory split, not its registers
# (-qkv8-carveout.sh).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/wide-qkv9.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
c() { LLMC_EXPERIMENT_DEFINES="$2" timeout -s KILL 100 .bin/llmc compile /tmp/w/m -o /tmp/w/$1.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40; }
c p "" & c w9 "GEMV_WIDE=1 GEMV_WIDE_WARPS=9" & c w8 "GEMV_WIDE=1 GEMV_WIDE_WARPS=8" & c t9 "GEMV_WIDE=1 GEMV_WIDE_WARPS=9 TRACE_BLOCKS=1" &
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
export LLMC_WIDE=qkv_rope,linear
echo "== verify_full_scale, W=9 ($(date -u +%T))"
export LLMC_EXPERIMENT_DEFINES="GEMV_WIDE=1 GEMV_WIDE_WARPS=9" LLMC_WIDE_WARPS=9
timeout -s KILL 100 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-32 --shapes qwen2.5-1.5b --prompt-len 32 --steps 64 --max-seq-len 256 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
timeout -s KILL 100 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-1024 --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
unset LLMC_EXPERIMENT_DEFINES LLMC_WIDE
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for v in "p 0" "w9 9" "w8 8"; do
    set -- $v
    wide=qkv_rope,linear; [ "$2" = 0 ] && wide=none
    echo "[$1, round $r] $(LLMC_WIDE=$wide LLMC_WIDE_WARPS=$2 timeout -s KILL 40 .bin/llmc bench /tmp/w/$1.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-60 | tr '\n' ' ')"
  done
done
echo "[traced] $(LLMC_WIDE=qkv_rope,linear LLMC_WIDE_WARPS=9 timeout -s KILL 40 .bin/llmc bench /tmp/w/t9.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/wide-qkv9.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
python3 bench/graph_trace_summary.py $OUT/wide-qkv9.json --launches 4 2>&1 | tail -22
gzip -9 $OUT/wide-qkv9.json
echo "done $(date -u +%T)"
