#!/usr/bin/env bash
# EXPERIMENT (timing only): fused MLP with down read as if stored transposed (MLP_DOWN_T, wrong
# numbers: 2026-12-01-h200-mlp-down-t.patch on 7aabe1a, where kernels/mlp.cu exists) against the
# segmented down (7aabe1a) and the unfused kernels. .bin: llmc built from that tree.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/down-t.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT) + MLP_DOWN_T experiment"
python3 bench/make_random_qwen.py /tmp/w/m > /tmp/w/make.log 2>&1; pids=""
.bin/llmc compile /tmp/w/m -o /tmp/w/bf16.plan --weights bf16 --max-seq-len 1152 > /tmp/w/c1.log 2>&1 & pids="$pids $!"
LLMC_EXPERIMENT_DEFINES="MLP_DOWN_T=1" .bin/llmc compile /tmp/w/m -o /tmp/w/t.plan --weights bf16 --max-seq-len 1152 > /tmp/w/c2.log 2>&1 & pids="$pids $!"
LLMC_EXPERIMENT_DEFINES="MLP_DOWN_T=1 TRACE_BLOCKS=1" .bin/llmc compile /tmp/w/m -o /tmp/w/t-traced.plan --weights bf16 --max-seq-len 1152 > /tmp/w/c3.log 2>&1 & pids="$pids $!"
wait $pids; tail -qn1 /tmp/w/c1.log /tmp/w/c2.log /tmp/w/c3.log | cut -c1-60
bench() { echo "[$1 fuse $2, prompt $3] $(LLMC_FUSE_MLP=$2 timeout 60 .bin/llmc bench /tmp/w/$1.plan --prompt-len $3 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-90)"; }
for round in 1 2; do for p in 32 1024; do bench bf16 0 $p; bench bf16 1 $p; bench t 1 $p; done; done
timeout 60 .bin/llmc bench /tmp/w/t-traced.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/down-t.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60
python3 bench/graph_trace_summary.py $OUT/down-t.json --launches 6 && gzip -9 $OUT/down-t.json
