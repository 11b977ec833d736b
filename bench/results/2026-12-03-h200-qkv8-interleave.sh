#!/usr/bin/env bash
# #13, two experiments behind defines in one build (-qkv8-interleave.patch on d9640ef):
# (1) qkv_rope as 128 blocks of 8 warps. -wide-gemv.sh (16 warps, 8 with tasks, one block an SM)
#     cut its work 5.66 -> 3.55 us a layer but held every register of its SMs, so attention_proj's
#     blocks could not start beside it and copy W_o before the wait (handoff 0.54 -> 4.88 us);
#     -wide-qkv9.sh's 9 warps of 128 registers did not fit beside them either (a sub-partition's
#     16,384 registers: 3 qkv warps + 2 attention warps). QKV_WIDE_MIN_BLOCKS=1 lets ptxas take 140
#     registers (one block an SM, 2 x 4,608 + 2 x 3,328 a sub-partition beside attention_proj);
#     =2 caps it at 128 (two blocks can share an SM). Run with LLMC_WIDE=qkv_rope LLMC_WIDE_WARPS=8.
# (2) MLP_INTERLEAVE: the fused MLP's block b owns units b, b + G, ... instead of a consecutive
#     range, so that at any time the blocks together read neighbouring rows of W_gate_up and
#     whole rows of W_down (the LM head, which sweeps its rows so, streams at 4.14 TB/s; the
#     MLP's gate/up after its wait at ~3.4).
# verify_full_scale with both, three interleaved rounds on the random Qwen2.5-1.5B shape (bf16,
# 128 tokens after 32 and 1,024), traced steps. .bin: llmc, COMMIT.
# Result (19:41 UTC, -qkv8-interleave.log; traces -qkv8-interleave-q8.json.gz and -mi.json.gz),
# ms/token after 32 / 1,024 tokens: main's form (p) 1.113-1.123 / 1.224-1.236; q8 1.189-1.198 /
# 1.224-1.234 (attention_proj still off its SMs: handoff 3.9-5.1 us); q8b 1.101-1.106 /
# 1.211-1.216 (kept: now main, -qkv8-landing.sh); MLP_INTERLEAVE 1.265-1.274 / 1.434-1.437 (the
# MLP 28.8 us a layer against ~22: a block's 16-byte pieces of every down row cost more than the
# sweep gains); both 1.331-1.336 / 1.419-1.424. verify_full_scale (both) 3.19e-5 / 5.93e-5.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/qkv8-interleave.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
Q8="QKV_WIDE=1 QKV_WIDE_WARPS=8 QKV_WIDE_MIN_BLOCKS=1"
c() { LLMC_EXPERIMENT_DEFINES="$2" timeout -s KILL 150 .bin/llmc compile /tmp/w/m -o /tmp/w/$1.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40; }
c p "" & c q8 "$Q8" & c q8b "QKV_WIDE=1 QKV_WIDE_WARPS=8 QKV_WIDE_MIN_BLOCKS=2" & c mi "MLP_INTERLEAVE=1" & c both "$Q8 MLP_INTERLEAVE=1" &
c tq8 "$Q8 TRACE_BLOCKS=1" & c tmi "MLP_INTERLEAVE=1 TRACE_BLOCKS=1" &
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
echo "== verify_full_scale, both ($(date -u +%T))"
export LLMC_EXPERIMENT_DEFINES="$Q8 MLP_INTERLEAVE=1" LLMC_WIDE=qkv_rope LLMC_WIDE_WARPS=8
timeout -s KILL 100 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-32 --shapes qwen2.5-1.5b --prompt-len 32 --steps 64 --max-seq-len 256 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
timeout -s KILL 100 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-1024 --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
unset LLMC_EXPERIMENT_DEFINES LLMC_WIDE
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for v in "p none" "q8 qkv_rope" "q8b qkv_rope" "mi none" "both qkv_rope"; do
    set -- $v
    echo "[$1, round $r] $(LLMC_WIDE=$2 timeout -s KILL 40 .bin/llmc bench /tmp/w/$1.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-60 | tr '\n' ' ')"
  done
done
for v in "tq8 qkv_rope" "tmi none"; do
  set -- $v
  echo "[traced $1] $(LLMC_WIDE=$2 timeout -s KILL 40 .bin/llmc bench /tmp/w/$1.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/$1.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
  python3 bench/graph_trace_summary.py $OUT/$1.json --launches 4 2>&1 | tail -22
  gzip -9 $OUT/$1.json
done
echo "done $(date -u +%T)"
