#!/usr/bin/env bash
# #13: the bf16 LM head as one block of 16 warps an SM (LM_HEAD_WARPS, grid min(SMs, vocab / 16)),
# not 528 blocks of 4 warps, which landed five to an SM on 105 SMs and none on 24
# (-prefetch-next-t0.json.gz). The GPU tests that reach the LM head (decode graphs, prefill,
# device sampling, log-probs), verify_full_scale after 32 tokens, compute-sanitizer memcheck and
# racecheck on a fixture, three interleaved rounds against main's binary (b7535b3) on the random
# Qwen2.5-1.5B shape (bf16, 128 tokens after 32 and 1,024), and a traced step.
# .bin: llmc, llmc-main, cuda_vs_cpu, COMMIT.
# Result (18:02-18:04 UTC, d2758bd, -lm-head-wide.log): kept. The four GPU tests, verify_full_scale
# (3.19e-5 against transformers f32 over 64 steps after 32 tokens, no token mismatch),
# compute-sanitizer memcheck (0 errors) and racecheck (0 hazards) pass. ms/token after 32 /
# 1,024, three rounds: main 1.112 / 1.225, the wide LM head 1.107-1.108 / 1.215-1.216. Traced: the
# LM head 0.54 + 112.83 us a step (4.14 TB/s), against ~122.5 (-mlp-marks-trace.json.gz).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/lm-head-wide.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
( python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
  timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
  timeout -s KILL 120 .bin/llmc-main compile /tmp/w/m -o /tmp/w/main.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
  LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/t.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
  .bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/q3.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
  wait $(jobs -p) ) &
echo "== tests ($(date -u +%T))"
timeout -s KILL 150 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 cuda_matches_cpu_on_every cuda_prefill_matches_cpu_decode_on_every device_sampling top_logprobs 2>&1 | grep -E "^test |panicked|result" | head -20
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
echo "== verify_full_scale ($(date -u +%T))"
timeout -s KILL 100 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-32 --shapes qwen2.5-1.5b --prompt-len 32 --steps 64 --max-seq-len 256 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
echo "== compute-sanitizer ($(date -u +%T))"
for tool in memcheck racecheck; do
  echo "[$tool qwen3_untied] $(timeout -s KILL 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/q3.plan --prompt-ids $(seq -s, 1 12) --max-tokens 8 --ignore-eos 2>&1 | tail -1) exit ${PIPESTATUS[0]}"
done
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for v in "main llmc-main" "p llmc"; do
    set -- $v
    echo "[$1, round $r] $(timeout -s KILL 60 .bin/$2 bench /tmp/w/$1.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-60 | tr '\n' ' ')"
  done
done
echo "[traced] $(timeout -s KILL 60 .bin/llmc bench /tmp/w/t.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/lm-head-wide.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
python3 bench/graph_trace_summary.py $OUT/lm-head-wide.json --launches 4 2>&1 | grep -E "lm_head|sample"
gzip -9 $OUT/lm-head-wide.json
echo "done $(date -u +%T)"
