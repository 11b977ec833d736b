#!/usr/bin/env bash
# Not run yet (prepared 2026-12-01 after the device time ran out). #13: the one-row bf16 GEMVs
# (o_proj, down, LM head) ask for their first weights after their wait
# (LLMC_EXPERIMENT_DEFINES="GEMV_LATE_ONE_ROW=1", gemv.cu), so down's blocks that start during
# gate/up's tail no longer compete with it for HBM (-graph-trace.log: down's 384 blocks land on
# the SMs gate/up frees first, and gate/up grew 14.3 -> 15.0-16.2 us a launch when down was
# spread over every SM). HEAD's binaries, no rebuild: random Qwen2.5-1.5B shape, bf16, graph and
# persistent decode, 128 tokens after 32 (two interleaved rounds) and 1,024; a traced graph
# step each way; the GPU tests with the define. .bin: llmc, cuda_vs_cpu (stripped).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/late-loads.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
pids=""
for late in 0 1; do
  for decode in graph persistent; do
    LLMC_EXPERIMENT_DEFINES="GEMV_LATE_ONE_ROW=$late" .bin/llmc compile /tmp/w/m -o /tmp/w/$decode-$late.plan --weights bf16 --decode $decode --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
  done
  LLMC_EXPERIMENT_DEFINES="GEMV_LATE_ONE_ROW=$late TRACE_BLOCKS=1" .bin/llmc compile /tmp/w/m -o /tmp/w/traced-$late.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
done
wait $pids
bench() { echo "[$1 late $2, $3] $(timeout 60 .bin/llmc bench /tmp/w/$1-$2.plan --prompt-len $3 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-90)"; }
for round in 1 2; do for decode in graph persistent; do for late in 0 1; do bench $decode $late 32; done; done; done
for late in 0 1; do bench graph $late 1024; done
for late in 0 1; do
  .bin/llmc bench /tmp/w/traced-$late.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/late-$late.json 2>&1 | grep -E 'prompt |rror'
  python3 bench/graph_trace_summary.py $OUT/late-$late.json --launches 6; gzip -9 $OUT/late-$late.json
done
echo "== tests, GEMV_LATE_ONE_ROW=1"
LLMC_EXPERIMENT_DEFINES="GEMV_LATE_ONE_ROW=1" timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |replays|worst|panicked|result" | head -40
