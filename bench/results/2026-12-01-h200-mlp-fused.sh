#!/usr/bin/env bash
# Run 2026-12-01 (Stop 34): a layer's gate/up and down projections as one `mlp` kernel on the
# graph path with bf16 weights (kernels/mlp.cu; LLMC_FUSE_MLP=0 runs the two kernels as before).
# (1) the fixture test (graph path fused, and with LLMC_FUSE_MLP=0); (2) random Qwen2.5-1.5B
# shape, bf16, ms/token after 32 and 1,024 tokens, fused against not, two interleaved rounds;
# (3) a block-timestamp trace of the fused plan; (4) compute-sanitizer memcheck and racecheck of
# the qwen2_tied fixture's graph plan, and the rest of the GPU tests.
# .bin: llmc, cuda_vs_cpu, cuda_faults (stripped).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/mlp-fused.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
(python3 bench/make_random_qwen.py /tmp/w/m > /tmp/w/make.log 2>&1; pids=""
 .bin/llmc compile /tmp/w/m -o /tmp/w/bf16.plan --weights bf16 --max-seq-len 1152 > /tmp/w/c1.log 2>&1 & pids="$pids $!"
 LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" .bin/llmc compile /tmp/w/m -o /tmp/w/bf16-traced.plan --weights bf16 --max-seq-len 1152 > /tmp/w/c2.log 2>&1 & pids="$pids $!"
 .bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/w/ft.plan --max-seq-len 64 > /tmp/w/c3.log 2>&1 & pids="$pids $!"
 wait $pids) &
prep=$!
echo "== fixture test"
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 cuda_matches_cpu_on_every_fixture 2>&1 | grep -E "Graph|panicked|result" | head -30
wait $prep; tail -1 /tmp/w/make.log; tail -qn1 /tmp/w/c1.log /tmp/w/c2.log /tmp/w/c3.log | cut -c1-60
bench() { echo "[fuse $1, prompt $2] $(LLMC_FUSE_MLP=$1 timeout 60 .bin/llmc bench /tmp/w/bf16.plan --prompt-len $2 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-90)"; }
for round in 1 2; do for p in 32 1024; do for f in 0 1; do bench $f $p; done; done; done
echo "== trace, fused, prompt 32"
timeout 60 .bin/llmc bench /tmp/w/bf16-traced.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/mlp-fused-32.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60
python3 bench/graph_trace_summary.py $OUT/mlp-fused-32.json --launches 10 && gzip -9 $OUT/mlp-fused-32.json
echo "== compute-sanitizer, qwen2_tied graph plan (fused), prompt 20 + 8"
for tool in memcheck racecheck synccheck; do
  timeout 100 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/w/ft.plan --prompt-ids $(seq -s, 1 20) --max-tokens 8 --ignore-eos > /tmp/w/san-$tool.log 2>&1; echo "$tool exit $?: $(tail -1 /tmp/w/san-$tool.log)"
done
echo "== the other GPU tests"
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 --skip cuda_matches_cpu_on_every_fixture 2>&1 | grep -E "^test |replays|FFN|panicked|result" | head -30
timeout 30 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
