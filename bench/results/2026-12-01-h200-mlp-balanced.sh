#!/usr/bin/env bash
# Run 2026-12-01 (Stop 35): the fused MLP balanced (kernels/mlp.cu: a block's channels within one
# of the others', gate/up as slots of 32 chunks dealt evenly to the warps; warps a block from
# the host, LLMC_MLP_WARPS). (1) the fixture test (graph: fused default, unfused, 5 blocks with
# 4 warps, 1 block); (2) random Qwen2.5-1.5B shape, bf16, ms/token after 32 and 1,024 tokens:
# unfused, fused with 16 / 12 / 8 warps, two interleaved rounds; (3) block-timestamp traces
# (fused 16 and 12 warps); (4) compute-sanitizer memcheck, racecheck, synccheck of the qwen2_tied
# fixture's graph plan, default and with 5 blocks.
# .bin: llmc, cuda_vs_cpu, cuda_faults (stripped).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/mlp-balanced.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
(python3 bench/make_random_qwen.py /tmp/w/m > /tmp/w/make.log 2>&1; pids=""
 .bin/llmc compile /tmp/w/m -o /tmp/w/bf16.plan --weights bf16 --max-seq-len 1152 > /tmp/w/c1.log 2>&1 & pids="$pids $!"
 LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" .bin/llmc compile /tmp/w/m -o /tmp/w/bf16-traced.plan --weights bf16 --max-seq-len 1152 > /tmp/w/c2.log 2>&1 & pids="$pids $!"
 .bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/w/ft.plan --max-seq-len 64 > /tmp/w/c3.log 2>&1 & pids="$pids $!"
 wait $pids) &
prep=$!
echo "== fixture test"
timeout 240 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 cuda_matches_cpu_on_every_fixture 2>&1 | grep -E "Graph|panicked|result" | head -40
wait $prep; tail -1 /tmp/w/make.log; tail -qn1 /tmp/w/c1.log /tmp/w/c2.log /tmp/w/c3.log | cut -c1-60
bench() { echo "[fuse $1, warps $2, prompt $3] $(LLMC_FUSE_MLP=$1 LLMC_MLP_WARPS=$2 timeout 60 .bin/llmc bench /tmp/w/bf16.plan --prompt-len $3 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-90)"; }
for round in 1 2; do for p in 32 1024; do bench 0 16 $p; for w in 16 12 8; do bench 1 $w $p; done; done; done
for w in 16 12; do
  echo "== trace, fused, $w warps, prompt 32"
  LLMC_MLP_WARPS=$w timeout 60 .bin/llmc bench /tmp/w/bf16-traced.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/mlp-balanced-w$w.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60
  python3 bench/graph_trace_summary.py $OUT/mlp-balanced-w$w.json --launches 10 && gzip -9 $OUT/mlp-balanced-w$w.json
done
echo "== compute-sanitizer, qwen2_tied graph plan (fused), prompt 20 + 8"
for blocks in default 5; do for tool in memcheck racecheck synccheck; do
  [ $blocks = default ] && unset LLMC_MLP_BLOCKS || export LLMC_MLP_BLOCKS=$blocks
  timeout 100 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/w/ft.plan --prompt-ids $(seq -s, 1 20) --max-tokens 8 --ignore-eos > /tmp/w/san-$tool.log 2>&1; echo "blocks $blocks, $tool exit $?: $(tail -1 /tmp/w/san-$tool.log)"
done; done
