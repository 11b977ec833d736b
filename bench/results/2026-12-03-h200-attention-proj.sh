#!/usr/bin/env bash
# #13: attention and o_proj as one kernel (kernels/attention_proj.cu): W_o's columns of a block's
# share of its head are copied into shared memory before the grid wait, and after the merge each
# of the first cluster's blocks adds its share's projection into out. The GPU tests (with
# SPIN_LIMIT, so a lost wake-up traps instead of hanging), verify_full_scale after 32 and 1,024
# tokens, then three interleaved rounds on the random Qwen2.5-1.5B shape (bf16, 128 tokens after
# 32 and 1,024): fused in clusters of 4 (the default), fused in clusters of 8, and the two
# kernels (LLMC_FUSE_ATTN_PROJ=0) in clusters of 4; a traced step of the first;
# compute-sanitizer memcheck, racecheck and synccheck on the qwen3_untied fixture and a 2-layer
# model of the 1.5B's hidden and FFN sizes, fused, the first with the merge in the cluster (min
# chunk 64: 12 prompt tokens are one slice), the second through L2 (min chunk 2: 6-8 slices).
# It ran at c30c9b7, where the fusion was the default; since 302c7a1 it is asked for with
# LLMC_FUSE_ATTN_PROJ=1, which this script now sets where the log says fused.
# .bin: llmc, cuda_vs_cpu, cuda_faults, COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w /tmp/s
exec > >(tee $OUT/attention-proj.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
( [ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1 ) &
model=$!
echo "== tests ($(date -u +%T))"
LLMC_EXPERIMENT_DEFINES="SPIN_LIMIT=20000000" timeout -s KILL 240 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |fused|panicked|result|llmc spin" | head -60
LLMC_EXPERIMENT_DEFINES="SPIN_LIMIT=20000000" timeout -s KILL 40 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
echo "== verify_full_scale ($(date -u +%T))"
export LLMC_EXPERIMENT_DEFINES="SPIN_LIMIT=20000000" LLMC_FUSE_ATTN_PROJ=1
timeout -s KILL 150 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-32 --shapes qwen2.5-1.5b,qwen3-1.7b --prompt-len 32 --steps 64 --max-seq-len 256 2>&1 | grep -E "llmc vs hf|pass|Error|error|spin" | head -6
timeout -s KILL 120 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-1024 --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | grep -E "llmc vs hf|pass|Error|error|spin" | head -3
unset LLMC_EXPERIMENT_DEFINES
export LLMC_FUSE_ATTN_PROJ=1  # the sanitizer runs below; the bench sets it per variant
wait $model
timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/t.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for v in "fused4 LLMC_FUSE_ATTN_PROJ=1" "fused8 LLMC_FUSE_ATTN_PROJ=1,LLMC_ATTN_CLUSTER=8" "apart4 LLMC_FUSE_ATTN_PROJ=0"; do
    set -- $v
    echo "[$1, round $r] $(env ${2//,/ } timeout -s KILL 90 .bin/llmc bench /tmp/w/p.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-60 | tr '\n' ' ')"
  done
done
for v in "fused4 LLMC_FUSE_ATTN_PROJ=1"; do
  set -- $v
  echo "[$1 traced] $(env ${2//,/ } timeout -s KILL 60 .bin/llmc bench /tmp/w/t.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/attention-proj-$1.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
  python3 bench/graph_trace_summary.py $OUT/attention-proj-$1.json --launches 4 2>&1 | tail -12; gzip -9 $OUT/attention-proj-$1.json
done
echo "== compute-sanitizer ($(date -u +%T))"
python3 bench/make_random_qwen.py /tmp/s/m --layers 2 --vocab 272 2>&1 | tail -1
.bin/llmc compile /tmp/s/m -o /tmp/s.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
.bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/q3.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
for tool in memcheck racecheck synccheck; do
  for v in "/tmp/q3.plan LLMC_ATTN_MIN_CHUNK=64" "/tmp/s.plan LLMC_ATTN_MIN_CHUNK=2"; do
    set -- $v
    echo "[$tool $1 $2] $(env ${2//,/ } timeout -s KILL 90 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run $1 --prompt-ids $(seq -s, 1 12) --max-tokens 4 --ignore-eos 2>&1 | tail -1) exit ${PIPESTATUS[0]}"
  done
done
echo "done $(date -u +%T)"
