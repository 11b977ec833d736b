#!/usr/bin/env bash
# #13: the fused MLP's blocks that start while attention still runs (most SMs are free then) ask
# L2 for gate/up rows before their grid wait (cp.async.bulk.prefetch.L2, MLP_PREFETCH_CHANNELS
# channels of their own share and of block + G/2's), so HBM works through the ~10 us it idled.
# First the pending set_sampling check (qwen3_untied across the two graphs), then three
# interleaved rounds on the random Qwen2.5-1.5B shape (bf16, 128 tokens after 32 and 1,024) of
# MLP_PREFETCH_CHANNELS 0 (main), 16, 32, 72 (every channel: a block owns 64-72), and a traced
# step at 32. .bin: llmc, cuda_vs_cpu, COMMIT. The kernel change is -mlp-prefetch.patch (on bff0256).
# Result (15:16 UTC): set_sampling passed, qwen3_untied across the switch included; the prefetch
# is slower the more it asks (0: 1.133-1.135, 16: 1.144-1.145, 32: 1.163-1.170, 72: 1.263-1.266
# ms/token after 32), the MLP no faster in the trace and attention_proj slower. Not kept.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/mlp-prefetch.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
( python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
  for p in 0 16 32 72; do
    LLMC_EXPERIMENT_DEFINES="MLP_PREFETCH_CHANNELS=$p" timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/p$p.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
  done
  LLMC_EXPERIMENT_DEFINES="MLP_PREFETCH_CHANNELS=32 TRACE_BLOCKS=1" timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/t.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
  wait $(jobs -p) ) &
echo "== set_sampling ($(date -u +%T))"
LLMC_EXPERIMENT_DEFINES="SPIN_LIMIT=20000000" timeout -s KILL 150 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 sampl 2>&1 | grep -E "^test |short-context|panicked|result|llmc spin" | head -20
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for p in 0 16 32 72; do
    echo "[prefetch $p, round $r] $(timeout -s KILL 90 .bin/llmc bench /tmp/w/p$p.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-60 | tr '\n' ' ')"
  done
done
echo "[prefetch 32 traced] $(timeout -s KILL 60 .bin/llmc bench /tmp/w/t.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/mlp-prefetch-trace.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
python3 bench/graph_trace_summary.py $OUT/mlp-prefetch-trace.json --launches 4 2>&1 | tail -14; gzip -9 $OUT/mlp-prefetch-trace.json
echo "done $(date -u +%T)"
