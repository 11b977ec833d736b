#!/usr/bin/env bash
# Where each decode kernel's post-wait chain goes (#13): graph plans compiled with
# LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" record, per block, its start, wait return, two phase
# marks (trace_mark: GEMV x staged / first rows summed; attention q loaded / P.V done; fused MLP
# gate/up / down done) and exit; bench/graph_trace_summary.py prints the medians after the wait.
# Random Qwen2.5-1.5B shape, bf16 (fused MLP) and q4_k, traced and untraced, 128 tokens after 32
# and 1,024. Then the GPU tests (the kernels' sources changed, not their untraced code), unless
# TESTS=0. Log: 2026-12-02-h200-trace-marks.log (386b32e, whose stamps each waited for an L2
# round trip) and -trace-marks-2.log (fa6f6d7, stamps from shared memory).
# .bin: llmc, cuda_vs_cpu, cuda_faults, COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/trace-marks.log) 2>&1
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
    python3 bench/graph_trace_summary.py $OUT/$w-$p.json --launches 6 && gzip -9 $OUT/$w-$p.json
  done
done
[ "${TESTS:-1}" = 0 ] && exit 0
echo "== tests"
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |panicked|result" | head -30
timeout 30 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
