#!/usr/bin/env bash
# #13: landing check of qkv_rope in blocks of QKV_WARPS = 8 warps, at most two an SM (1% faster in
# -qkv8-interleave.log and -qkv8-carveout.log as the experiment "q8b"): every GPU test, the faults,
# verify_full_scale (Qwen2.5-1.5B and Qwen3-1.7B after 32 tokens, Qwen2.5-1.5B after 1,024),
# compute-sanitizer memcheck, racecheck and synccheck; then three interleaved rounds against main's
# binary on the random Qwen2.5-1.5B shape (bf16, 128 tokens after 32 and 1,024), the short graph's
# MLP on 124 and 120 blocks (LLMC_SHORT_MLP_BLOCKS; 128 is the default), and a traced step.
# .bin: llmc, llmc-main (d9640ef), cuda_vs_cpu, cuda_faults, COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w /tmp/s
exec > >(tee $OUT/qkv8-landing.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
( python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
  timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
  timeout -s KILL 120 .bin/llmc-main compile /tmp/w/m -o /tmp/w/main.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
  LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/t.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
  python3 bench/make_random_qwen.py /tmp/s/m --layers 2 --vocab 272 2>&1 | tail -1
  .bin/llmc compile /tmp/s/m -o /tmp/s.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
  .bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/q3.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
  wait $(jobs -p) ) &
echo "== tests ($(date -u +%T))"
LLMC_EXPERIMENT_DEFINES="SPIN_LIMIT=20000000" timeout -s KILL 250 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |panicked|result|llmc spin" | head -40
LLMC_EXPERIMENT_DEFINES="SPIN_LIMIT=20000000" timeout -s KILL 40 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
echo "== verify_full_scale ($(date -u +%T))"
timeout -s KILL 120 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-32 --shapes qwen2.5-1.5b,qwen3-1.7b --prompt-len 32 --steps 64 --max-seq-len 256 2>&1 | grep -E "llmc vs hf|Error|error|spin" | head -6
timeout -s KILL 90 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-1024 --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | grep -E "llmc vs hf|Error|error|spin" | head -3
echo "== compute-sanitizer ($(date -u +%T))"
for tool in memcheck racecheck synccheck; do
  for v in "/tmp/q3.plan LLMC_ATTN_MIN_CHUNK=64 $(seq -s, 1 12)" "/tmp/s.plan LLMC_ATTN_MIN_CHUNK=2 1,2,3"; do
    set -- $v
    echo "[$tool $1 $2 prompt $3] $(env $2 timeout -s KILL 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run $1 --prompt-ids $3 --max-tokens 8 --ignore-eos 2>&1 | tail -1) exit ${PIPESTATUS[0]}"
  done
done
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for v in "main llmc-main 0 32,1024" "p llmc 0 32,1024" "p llmc 124 32" "p llmc 120 32"; do
    set -- $v
    echo "[$1 mlp blocks $3, round $r] $(LLMC_SHORT_MLP_BLOCKS=$3 timeout -s KILL 60 .bin/$2 bench /tmp/w/$1.plan --prompt-len $4 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-60 | tr '\n' ' ')"
  done
done
echo "[traced] $(timeout -s KILL 60 .bin/llmc bench /tmp/w/t.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/qkv8-landing.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
python3 bench/graph_trace_summary.py $OUT/qkv8-landing.json --launches 4 2>&1 | tail -22
gzip -9 $OUT/qkv8-landing.json
echo "done $(date -u +%T)"
