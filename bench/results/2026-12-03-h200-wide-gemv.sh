#!/usr/bin/env bash
# #13: the LM head's fix (one block of 16 warps an SM, -lm-head-wide.sh) for qkv_rope and the
# long graph's o_proj `linear`. qkv_rope's 256 blocks of 4 warps land four to an SM on ~64 SMs,
# where the phase from x staged to its first rows summed (~400 instructions a warp, 16 warps an
# SM) takes ~1.5 us; o_proj's 384 blocks likewise. A plan compiled with GEMV_WIDE=1 and run with
# LLMC_WIDE=qkv_rope,linear launches them as min(SMs, ceil(tasks / 8)) blocks of 16 warps, the
# first ceil(tasks / blocks) warps of each with tasks (-wide-gemv.patch). verify_full_scale after
# 32 (short graph) and 1,024 tokens (long), three interleaved rounds on the random Qwen2.5-1.5B
# shape (bf16, 128 tokens after 32 and 1,024), a traced step. .bin: llmc, COMMIT.
# Code: d9640ef + -wide-gemv.patch (as prepared it dealt ceil(tasks / 16) blocks, 64 for
# qkv_rope: no spread; fixed to 8 before the run).
# Result (2026-12-03 19:19 UTC, -wide-gemv.log, -wide-gemv.json.gz): correct (verify_full_scale
# 3.19e-5 / 5.89e-5, no token mismatch) but slower: 1.187-1.193 against 1.111-1.119 ms/token after
# 32 tokens, 1.221-1.225 against 1.222-1.229 after 1,024. qkv_rope's work fell from 5.66 to 3.55 us
# a layer (128 blocks on 128 SMs), but its blocks held every register of their SMs, so
# attention_proj's blocks could not start beside them and copy W_o before the wait: attention_proj's
# handoff went 0.54 -> 4.88 us. The third variant ("wide qkv_rope", linear at 128 threads in a plan
# compiled for 512) is invalid: non-finite logits, as a GEMV_WIDE plan must run both wide.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/wide-gemv.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
timeout -s KILL 100 .bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
LLMC_EXPERIMENT_DEFINES="GEMV_WIDE=1" timeout -s KILL 100 .bin/llmc compile /tmp/w/m -o /tmp/w/wide.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
LLMC_EXPERIMENT_DEFINES="GEMV_WIDE=1 TRACE_BLOCKS=1" timeout -s KILL 100 .bin/llmc compile /tmp/w/m -o /tmp/w/t.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
echo "== verify_full_scale, wide ($(date -u +%T))"
export LLMC_EXPERIMENT_DEFINES="GEMV_WIDE=1" LLMC_WIDE=qkv_rope,linear
timeout -s KILL 100 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-32 --shapes qwen2.5-1.5b --prompt-len 32 --steps 64 --max-seq-len 256 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
timeout -s KILL 100 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-1024 --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
unset LLMC_EXPERIMENT_DEFINES LLMC_WIDE
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for v in "p none" "wide qkv_rope,linear" "wide qkv_rope"; do
    set -- $v
    echo "[$1, round $r] $(LLMC_WIDE=$2 timeout -s KILL 40 .bin/llmc bench /tmp/w/$1.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-60 | tr '\n' ' ')"
  done
done
echo "[traced] $(LLMC_WIDE=qkv_rope,linear timeout -s KILL 40 .bin/llmc bench /tmp/w/t.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/wide-gemv.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
python3 bench/graph_trace_summary.py $OUT/wide-gemv.json --launches 4 2>&1 | tail -12
gzip -9 $OUT/wide-gemv.json
echo "done $(date -u +%T)"
