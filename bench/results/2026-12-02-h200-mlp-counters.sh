#!/usr/bin/env bash
# The fused MLP's counters (#13): monotonic 64-bit arrivals and copies (no block re-arms them or
# waits on an atomic's round trip to leave; each block asks whether x is copied before its down
# phase) against 80e9044's (one u32: arrivals, a flag bit and departures, the last block to leave
# re-arming it), each binary compiling and running its own plan, three interleaved rounds, random
# Qwen2.5-1.5B shape, bf16, 128 tokens after 32 and 1,024 (killed at 90 s; a kernel that hangs
# would still hold the call, its process unable to exit). First (unless TESTS=0, while the random model is written) the GPU tests and
# compute-sanitizer memcheck, racecheck and synccheck on a fixture's graph plan (qwen3_untied).
# .bin: llmc, llmc-old (80e9044), cuda_vs_cpu, cuda_faults, COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/mlp-counters.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
( [ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1 ) &
model=$!
if [ "${TESTS:-1}" = 1 ]; then
  echo "== tests"
  timeout -s KILL 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |panicked|result" | head -30
  timeout -s KILL 40 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
  .bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/fg.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
  for tool in memcheck racecheck synccheck; do
    echo "== compute-sanitizer $tool, graph, qwen3_untied, 20-token prompt"
    timeout -s KILL 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fg.plan --prompt-ids $(seq -s, 1 20) --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
  done
fi
wait $model
.bin/llmc compile /tmp/w/m -o /tmp/w/new.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
.bin/llmc-old compile /tmp/w/m -o /tmp/w/old.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
for r in 1 2 3; do for v in new old; do
  b=.bin/llmc; [ $v = old ] && b=.bin/llmc-old
  echo "[$v, round $r] $(timeout -s KILL 90 $b bench /tmp/w/$v.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-60 | tr '\n' ' ')"
done; done
