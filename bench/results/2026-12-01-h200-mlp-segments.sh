#!/usr/bin/env bash
# Run 2026-12-01 (Stop 35): the fused MLP's down phase as segments of a warp's lanes, one a row
# (kernels/mlp.cu, mlp_down): before, 8 lanes a row took a block's 9-10 units as two chunks a
# lane, so 6 of every 16 lane-slots idled and down had 5 KB in flight a warp instead of 8.
# (1) the fixture test; (2) random Qwen2.5-1.5B shape, bf16, ms/token after 32 and 1,024 tokens,
# unfused and fused (16 and 12 warps), two interleaved rounds; (3) a block-timestamp trace
# (fused); (4) compute-sanitizer memcheck and racecheck, qwen2_tied graph plan, 5 blocks.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/mlp-segments.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
(python3 bench/make_random_qwen.py /tmp/w/m > /tmp/w/make.log 2>&1; pids=""
 .bin/llmc compile /tmp/w/m -o /tmp/w/bf16.plan --weights bf16 --max-seq-len 1152 > /tmp/w/c1.log 2>&1 & pids="$pids $!"
 LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" .bin/llmc compile /tmp/w/m -o /tmp/w/bf16-traced.plan --weights bf16 --max-seq-len 1152 > /tmp/w/c2.log 2>&1 & pids="$pids $!"
 .bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/w/ft.plan --max-seq-len 64 > /tmp/w/c3.log 2>&1 & pids="$pids $!"
 wait $pids) &
prep=$!
echo "== fixture test"
timeout 240 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 cuda_matches_cpu_on_every_fixture 2>&1 | grep -E "MLP|panicked|result" | head -40
wait $prep; tail -1 /tmp/w/make.log; tail -qn1 /tmp/w/c1.log /tmp/w/c2.log /tmp/w/c3.log | cut -c1-60
bench() { echo "[fuse $1, warps $2, prompt $3] $(LLMC_FUSE_MLP=$1 LLMC_MLP_WARPS=$2 timeout 60 .bin/llmc bench /tmp/w/bf16.plan --prompt-len $3 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-90)"; }
for round in 1 2; do for p in 32 1024; do bench 0 16 $p; bench 1 16 $p; bench 1 12 $p; done; done
echo "== trace, fused, prompt 32"
timeout 60 .bin/llmc bench /tmp/w/bf16-traced.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/mlp-segments.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60
python3 bench/graph_trace_summary.py $OUT/mlp-segments.json --launches 6 && gzip -9 $OUT/mlp-segments.json
echo "== compute-sanitizer, qwen2_tied graph plan (fused, 5 blocks), prompt 20 + 8"
for tool in memcheck racecheck; do
  LLMC_MLP_BLOCKS=5 timeout 100 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/w/ft.plan --prompt-ids $(seq -s, 1 20) --max-tokens 8 --ignore-eos > /tmp/w/san-$tool.log 2>&1; echo "$tool exit $?: $(tail -1 /tmp/w/san-$tool.log)"
done
