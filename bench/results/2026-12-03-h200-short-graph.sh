#!/usr/bin/env bash
# #13: a second decode graph for short contexts (6d36367): while the context fits one cluster of
# slices a head (4 x 64 = 256 positions), the runtime replays a graph where each layer's
# attention and o_proj are one attention_proj launch of grid (heads, cluster); past that the graph
# of one kernel per step as before. The GPU tests (SPIN_LIMIT: a lost wake-up traps), the faults,
# verify_full_scale after 32 tokens (short graph) and 1,024 (long), three interleaved rounds on
# the random Qwen2.5-1.5B shape (bf16, 128 tokens after 32, 384 and 1,024): the default, one graph
# (LLMC_FUSE_ATTN_PROJ=0), the short graph up to 1,024 positions (LLMC_SHORT_CONTEXT=1024) and in
# clusters of 8 (up to 512), and two MLP experiments (defines): the fused MLP at most 96
# registers a thread with 8 chunks in flight a lane (so that one qkv_rope block, 125 registers x
# 128 threads, fits beside it while its last blocks run), and 8 chunks alone; a traced step of the default after 32 tokens; compute-sanitizer
# memcheck, racecheck and synccheck on the qwen3_untied fixture (short graph throughout) and a
# 2-layer model of the 1.5B's sizes at min chunk 2 (short graph below 8 positions, then long).
# Ran at 33c530a; the MLP defines were removed after it (ad54d54; -mlp-regs.patch restores them).
# .bin: llmc, cuda_vs_cpu, cuda_faults, COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w /tmp/s
exec > >(tee $OUT/short-graph.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
( python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
  timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
  LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/t.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
  LLMC_EXPERIMENT_DEFINES="MLP_MAX_REGS=96 MLP_BATCH=8" timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/r96.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
  LLMC_EXPERIMENT_DEFINES="MLP_BATCH=8" timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/b8.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 ) &
echo "== tests ($(date -u +%T))"
LLMC_EXPERIMENT_DEFINES="SPIN_LIMIT=20000000" timeout -s KILL 240 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |fused below Some|panicked|result|llmc spin" | head -60
LLMC_EXPERIMENT_DEFINES="SPIN_LIMIT=20000000" timeout -s KILL 40 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
echo "== verify_full_scale ($(date -u +%T))"
export LLMC_EXPERIMENT_DEFINES="SPIN_LIMIT=20000000"
timeout -s KILL 150 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-32 --shapes qwen2.5-1.5b,qwen3-1.7b --prompt-len 32 --steps 64 --max-seq-len 256 2>&1 | grep -E "llmc vs hf|pass|Error|error|spin" | head -6
timeout -s KILL 120 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-1024 --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | grep -E "llmc vs hf|pass|Error|error|spin" | head -3
unset LLMC_EXPERIMENT_DEFINES
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for v in "default p LLMC_FUSE_MLP=1" "one-graph p LLMC_FUSE_ATTN_PROJ=0" "short1024 p LLMC_SHORT_CONTEXT=1024" "cluster8 p LLMC_ATTN_CLUSTER=8" "mlp-regs96-batch8 r96 LLMC_FUSE_MLP=1" "mlp-batch8 b8 LLMC_FUSE_MLP=1"; do
    set -- $v
    echo "[$1, round $r] $(env ${3//,/ } timeout -s KILL 90 .bin/llmc bench /tmp/w/$2.plan --prompt-len 32,384,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin|kernels per' | cut -c1-60 | tr '\n' ' ')"
  done
done
echo "[default traced] $(timeout -s KILL 60 .bin/llmc bench /tmp/w/t.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/short-graph-trace.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
python3 bench/graph_trace_summary.py $OUT/short-graph-trace.json --launches 4 2>&1 | tail -14; gzip -9 $OUT/short-graph-trace.json
echo "== compute-sanitizer ($(date -u +%T))"
python3 bench/make_random_qwen.py /tmp/s/m --layers 2 --vocab 272 2>&1 | tail -1
.bin/llmc compile /tmp/s/m -o /tmp/s.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
.bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/q3.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
for tool in memcheck racecheck synccheck; do
  for v in "/tmp/q3.plan LLMC_ATTN_MIN_CHUNK=64 $(seq -s, 1 12)" "/tmp/s.plan LLMC_ATTN_MIN_CHUNK=2 1,2,3"; do
    set -- $v
    echo "[$tool $1 $2 prompt $3] $(env $2 timeout -s KILL 90 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run $1 --prompt-ids $3 --max-tokens 8 --ignore-eos 2>&1 | tail -1) exit ${PIPESTATUS[0]}"
  done
done
echo "done $(date -u +%T)"
