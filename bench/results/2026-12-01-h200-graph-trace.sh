#!/usr/bin/env bash
# Block timestamps of the graph decode step (LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1": every
# block's start, wait return and exit, kernels/common.cuh; `llmc bench --trace`), summarized by
# bench/graph_trace_summary.py: where the step's time goes between kernels. Qwen2.5-1.5B shape,
# random weights, bf16 and --quantize q4_k, traced and untraced plans (the stamps' cost), 128
# tokens after 32 and 1,024. Then every GPU test and memcheck of a traced fixture plan.
# .bin: llmc, cuda_vs_cpu, cuda_faults.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/graph-trace.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
pids=""
for w in bf16 q4_k; do
  flag="--quantize $w"; [ $w = bf16 ] && flag="--weights bf16"
  .bin/llmc compile /tmp/w/m -o /tmp/w/$w.plan $flag --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
  LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" .bin/llmc compile /tmp/w/m -o /tmp/w/$w-traced.plan $flag --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
done
wait $pids
for w in bf16 q4_k; do
  echo "[$w untraced] $(timeout 60 .bin/llmc bench /tmp/w/$w.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep 'prompt ' | cut -c1-60 | tr '\n' ' ')"
  for p in 32 1024; do
    echo "[$w traced, prompt $p] $(timeout 60 .bin/llmc bench /tmp/w/$w-traced.plan --prompt-len $p --gen 128 --reps 2 --trace $OUT/$w-$p.json 2>&1 | grep -E 'prompt |error' | cut -c1-60)"
    python3 bench/graph_trace_summary.py $OUT/$w-$p.json --launches 12 && gzip -9 $OUT/$w-$p.json
  done
done
.bin/llmc bench /tmp/w/bf16.plan --prompt-len 32 --gen 8 --trace /tmp/x.json 2>&1 | tail -1; echo "exit $? (untraced graph plan)"
echo "== tests"
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |replays|FFN|panicked|result" | head -30
timeout 30 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" .bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/ft.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
echo "== compute-sanitizer memcheck, traced qwen2_tied graph plan"
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 .bin/llmc bench /tmp/ft.plan --prompt-len 20 --gen 8 --reps 1 --trace /tmp/ft.json 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
python3 bench/graph_trace_summary.py /tmp/ft.json --launches 6 | head -8
