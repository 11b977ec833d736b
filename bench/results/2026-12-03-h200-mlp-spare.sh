#!/usr/bin/env bash
# #13: the short-context graph's fused MLP on SMs - 4 (SHORT_CONTEXT_MLP_SPARE_SMS), the long
# graph's on every SM. The GPU tests (SPIN_LIMIT: a lost wake-up traps), the faults,
# verify_full_scale after 32 tokens (short graph, 128 MLP blocks) and 1,024 (long graph), three
# interleaved rounds on the random Qwen2.5-1.5B shape (bf16, 128 tokens after 32 and 1,024): the
# default against LLMC_SHORT_MLP_BLOCKS=132 (as before) and, after 32 only, 120; compute-sanitizer
# memcheck, racecheck and synccheck on the qwen3_untied fixture (short graph throughout) and a
# 2-layer model of the 1.5B's sizes at min chunk 2 (short graph, 128 MLP blocks, below 8
# positions, then long). .bin: llmc, cuda_vs_cpu, cuda_faults, COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w /tmp/s
exec > >(tee $OUT/mlp-spare.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
( python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
  timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
  python3 bench/make_random_qwen.py /tmp/s/m --layers 2 --vocab 272 2>&1 | tail -1
  .bin/llmc compile /tmp/s/m -o /tmp/s.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
  .bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/q3.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40 ) &
echo "== tests ($(date -u +%T))"
LLMC_EXPERIMENT_DEFINES="SPIN_LIMIT=20000000" timeout -s KILL 250 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |panicked|result|llmc spin" | head -40
LLMC_EXPERIMENT_DEFINES="SPIN_LIMIT=20000000" timeout -s KILL 40 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
echo "== verify_full_scale ($(date -u +%T))"
export LLMC_EXPERIMENT_DEFINES="SPIN_LIMIT=20000000"
timeout -s KILL 120 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-32 --shapes qwen2.5-1.5b,qwen3-1.7b --prompt-len 32 --steps 64 --max-seq-len 256 2>&1 | grep -E "llmc vs hf|pass|Error|error|spin" | head -6
timeout -s KILL 90 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-1024 --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | grep -E "llmc vs hf|pass|Error|error|spin" | head -3
unset LLMC_EXPERIMENT_DEFINES
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for v in "default 0 32,1024" "132 132 32,1024" "120 120 32"; do
    set -- $v
    echo "[$1, round $r] $(LLMC_SHORT_MLP_BLOCKS=$2 timeout -s KILL 60 .bin/llmc bench /tmp/w/p.plan --prompt-len $3 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin|kernels per' | cut -c1-60 | tr '\n' ' ')"
  done
done
echo "== compute-sanitizer ($(date -u +%T))"
for tool in memcheck racecheck synccheck; do
  for v in "/tmp/q3.plan LLMC_ATTN_MIN_CHUNK=64 $(seq -s, 1 12)" "/tmp/s.plan LLMC_ATTN_MIN_CHUNK=2 1,2,3"; do
    set -- $v
    echo "[$tool $1 $2 prompt $3] $(env $2 timeout -s KILL 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run $1 --prompt-ids $3 --max-tokens 8 --ignore-eos 2>&1 | tail -1) exit ${PIPESTATUS[0]}"
  done
done
echo "done $(date -u +%T)"
