#!/usr/bin/env bash
# #13: clustered attention pushes its parts into the merging blocks' shared memory (one cluster
# barrier after P.V, no remote loads; kernels/attention.cu). First the GPU tests (the graph path
# with clusters of 1, 4 and 8 among them), compute-sanitizer memcheck, racecheck and synccheck on
# a fixture's graph plan, and bench/verify_full_scale.py (Qwen2.5-1.5B after 32 and 1,024 prompt
# tokens, Qwen3-1.7B after 32); then its speed against the pulling merge (llmc_old: 7854974 with
# -carveout.patch, compiled with ATTN_PUSH_MERGE=0: 7854974's kernels), three interleaved rounds,
# random Qwen2.5-1.5B shape, bf16, 128 tokens after 32 and 1,024.
# .bin: llmc, llmc_old, cuda_vs_cpu, cuda_faults, COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/push-merge.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
( [ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1 ) &
model=$!
echo "== tests ($(date -u +%T))"
timeout -s KILL 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |panicked|result" | head -30
timeout -s KILL 40 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
.bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/fg.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
for tool in memcheck racecheck synccheck; do
  echo "== compute-sanitizer $tool, graph, qwen3_untied, 20-token prompt"
  timeout -s KILL 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fg.plan --prompt-ids $(seq -s, 1 20) --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
wait $model
.bin/llmc compile /tmp/w/m -o /tmp/w/new.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
LLMC_EXPERIMENT_DEFINES="ATTN_PUSH_MERGE=0" .bin/llmc_old compile /tmp/w/m -o /tmp/w/old.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
for r in 1 2 3; do for v in new old; do
  b=.bin/llmc; [ $v = old ] && b=.bin/llmc_old
  echo "[$v, round $r] $(timeout -s KILL 90 $b bench /tmp/w/$v.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-60 | tr '\n' ' ')"
done; done
echo "== verify_full_scale ($(date -u +%T))"
timeout -s KILL 150 python3 bench/verify_full_scale.py --llmc .bin/llmc --out $OUT/verify-32 --shapes qwen2.5-1.5b,qwen3-1.7b --prompt-len 32 --steps 64 --max-seq-len 256 2>&1 | grep -E "llmc vs hf|pass|Error|error" | head -6
timeout -s KILL 120 python3 bench/verify_full_scale.py --llmc .bin/llmc --out $OUT/verify-1024 --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | grep -E "llmc vs hf|pass|Error|error" | head -3
echo "done $(date -u +%T)"
