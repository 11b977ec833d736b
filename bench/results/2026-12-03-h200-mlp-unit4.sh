#!/usr/bin/env bash
# #13: the fused MLP's units of 4 FFN channels (MLP_UNIT=4: 8-byte down chunks, the same bytes in
# flight a lane) instead of 8. In -qkv8-landing.json.gz a block's median exit is 20.2-20.9 us after
# the wait with 9 units and 18.3-18.7 with 8 (a unit ~2.2 us), and the last block leaves ~1.9 us
# after the median one; blocks 84-95, which start on attention_proj's SMs with no weights loaded
# and own 9 units, are most often among the last. Units of 4 (17-18 a block) halve that step.
# Code: 154a06a + -mlp-unit4.patch (without the define the SASS is 154a06a's). GPU tests that run
# the fused MLP and verify_full_scale with the define, three interleaved rounds on the random
# Qwen2.5-1.5B shape (bf16, 128 tokens after 32 and 1,024), a traced step. .bin: llmc,
# cuda_vs_cpu, COMMIT.
# Result (20:14 UTC, -mlp-unit4.log, -mlp-unit4.json.gz): slower, 1.116-1.118 against 1.101-1.102
# ms/token after 32 tokens, 1.250-1.251 against 1.213-1.215 after 1,024; the MLP 23.0 us a layer
# as before, qkv_rope's handoff after it 1.5-2.0 us against ~0.7. Not kept. Correct where the host
# and the kernel agree: fixtures 5.87e-7, prefill 8.73e-6, FFN 8960 1.22e-6, verify_full_scale
# 3.19e-5; fused_mlp_blocks_of_several_units failed at a larger FFN, as expected: the host still
# reads MLP_UNIT 8 from the source and fuses up to 24 units of 8 a block, which at units of 4 is
# past MLP_MAX_SLOTS.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/mlp-unit4.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
c() { LLMC_EXPERIMENT_DEFINES="$2" timeout -s KILL 150 .bin/llmc compile /tmp/w/m -o /tmp/w/$1.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40; }
( python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
  c p "" & c u4 "MLP_UNIT=4" & c t4 "MLP_UNIT=4 TRACE_BLOCKS=1" &
  wait $(jobs -p) ) &
echo "== tests, MLP_UNIT=4 ($(date -u +%T))"
LLMC_EXPERIMENT_DEFINES="MLP_UNIT=4" timeout -s KILL 150 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 cuda_matches_cpu_on_every cuda_prefill_matches_cpu_decode_on_every fused_mlp 2>&1 | grep -E "^test |panicked|result" | head -20
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
echo "== verify_full_scale, MLP_UNIT=4 ($(date -u +%T))"
LLMC_EXPERIMENT_DEFINES="MLP_UNIT=4" timeout -s KILL 100 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-32 --shapes qwen2.5-1.5b --prompt-len 32 --steps 64 --max-seq-len 256 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for v in p u4; do
    echo "[$v, round $r] $(timeout -s KILL 40 .bin/llmc bench /tmp/w/$v.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-60 | tr '\n' ' ')"
  done
done
echo "[traced] $(timeout -s KILL 40 .bin/llmc bench /tmp/w/t4.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/mlp-unit4.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
python3 bench/graph_trace_summary.py $OUT/mlp-unit4.json --launches 4 2>&1 | tail -22
gzip -9 $OUT/mlp-unit4.json
echo "done $(date -u +%T)"
