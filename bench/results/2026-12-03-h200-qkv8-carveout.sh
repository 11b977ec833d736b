#!/usr/bin/env bash
# #13: qkv_rope as 128 blocks of 8 warps, one an SM, with attention_proj's blocks beside them.
# In -qkv8-interleave.sh the one-an-SM form (140 registers) still kept attention_proj's blocks off
# its SMs until it left (handoff 3.9-5.1 us), as the 16- and 9-warp forms had: presumably the
# SM's L1 / shared memory split, which the driver picks for qkv_rope's ~9 KiB and which cannot
# grow to attention_proj's ~122 KiB while a qkv_rope block runs there. Here qkv_rope's preferred
# carveout (LLMC_CARVEOUT_QKV_ROPE, percent of 228 KiB, -carveout-kernels.patch) is raised to 72
# (164 KiB) or 100. q8b: 8 warps of 128 registers (two can share an SM), 1% faster in
# -qkv8-interleave.log. Code: d9640ef + -qkv8-carveout.patch (-qkv8-interleave.patch with
# -carveout-kernels.patch). Three interleaved rounds on the random Qwen2.5-1.5B shape (bf16, 128
# tokens after 32 and 1,024), traced steps. .bin: llmc, COMMIT.
# Result (19:46 UTC, -qkv8-carveout.log; traces -qkv8-carveout-q8.json.gz, -q8b.json.gz), ms/token
# after 32 / 1,024 tokens: p 1.110-1.117 / 1.223-1.226; q8b 1.099-1.104 / 1.210-1.216; q8 at 72
# 1.148-1.155 / 1.232-1.238; q8 at 100 1.303-1.305 / 1.385-1.390; q8b at 72 1.101-1.103 /
# 1.224-1.229. The carveout was the reason: at 72 attention_proj's blocks start beside qkv_rope's
# again (handoff 0.61 us) but qkv_rope, sharing its SM's L1 and issue with W_o's copy, takes 6.2-6.8
# us a layer against 3.5-4. q8b became main (-qkv8-landing.sh). verify_full_scale (q8 at 72) 3.19e-5.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/qkv8-carveout.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
Q8="QKV_WIDE=1 QKV_WIDE_WARPS=8 QKV_WIDE_MIN_BLOCKS=1"
Q8B="QKV_WIDE=1 QKV_WIDE_WARPS=8 QKV_WIDE_MIN_BLOCKS=2"
c() { LLMC_EXPERIMENT_DEFINES="$2" timeout -s KILL 150 .bin/llmc compile /tmp/w/m -o /tmp/w/$1.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40; }
c p "" & c q8 "$Q8" & c q8b "$Q8B" & c tq8 "$Q8 TRACE_BLOCKS=1" & c tq8b "$Q8B TRACE_BLOCKS=1" &
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
echo "== verify_full_scale, q8 at 72 ($(date -u +%T))"
export LLMC_EXPERIMENT_DEFINES="$Q8" LLMC_WIDE=qkv_rope LLMC_WIDE_WARPS=8 LLMC_CARVEOUT_QKV_ROPE=72
timeout -s KILL 100 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-32 --shapes qwen2.5-1.5b --prompt-len 32 --steps 64 --max-seq-len 256 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
unset LLMC_EXPERIMENT_DEFINES LLMC_WIDE LLMC_CARVEOUT_QKV_ROPE
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for v in "p none -1" "q8b qkv_rope -1" "q8 qkv_rope 72" "q8 qkv_rope 100" "q8b qkv_rope 72"; do
    set -- $v
    echo "[$1 carveout $3, round $r] $(LLMC_WIDE=$2 LLMC_CARVEOUT_QKV_ROPE=$3 timeout -s KILL 40 .bin/llmc bench /tmp/w/$1.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-60 | tr '\n' ' ')"
  done
done
for v in "tq8 72" "tq8b -1"; do
  set -- $v
  echo "[traced $1 carveout $2] $(LLMC_WIDE=qkv_rope LLMC_CARVEOUT_QKV_ROPE=$2 timeout -s KILL 40 .bin/llmc bench /tmp/w/$1.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/$1.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
  python3 bench/graph_trace_summary.py $OUT/$1.json --launches 4 2>&1 | tail -22
  gzip -9 $OUT/$1.json
done
echo "done $(date -u +%T)"
