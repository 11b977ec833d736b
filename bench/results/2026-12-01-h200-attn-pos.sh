#!/usr/bin/env bash
# #13: decode attention at short context on the graph path. Today a block scores and sums
# ATTN_POS=4 positions a team per pass (64 a block), slices hold >= 64 positions
# (ATTN_MIN_CHUNK), so after 64 positions a step splits and merges (ticket + partials through
# L2). Variants (no rebuild: LLMC_EXPERIMENT_DEFINES at compile, LLMC_ATTN_MIN_CHUNK at run):
# ATTN_POS 4 / 8 (176 registers, no spills) x min chunk 64 / 128 / 256; random Qwen2.5-1.5B
# shape, bf16, graph decode, 128 tokens after 32 and after 1,024, two interleaved rounds; then a
# traced step of the best-looking pair, and the GPU tests with ATTN_POS=8.
# .bin: llmc, cuda_vs_cpu (stripped).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/attn-pos.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
pids=""
for p in 4 8; do
  LLMC_EXPERIMENT_DEFINES="ATTN_POS=$p" .bin/llmc compile /tmp/w/m -o /tmp/w/pos$p.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
  LLMC_EXPERIMENT_DEFINES="ATTN_POS=$p TRACE_BLOCKS=1" .bin/llmc compile /tmp/w/m -o /tmp/w/traced$p.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
done
wait $pids
bench() { echo "[pos $1 chunk $2, prompt $3] $(LLMC_ATTN_MIN_CHUNK=$2 timeout 60 .bin/llmc bench /tmp/w/pos$1.plan --prompt-len $3 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-90)"; }
for round in 1 2; do for prompt in 32 1024; do for p in 4 8; do for c in 64 128 256; do bench $p $c $prompt; done; done; done; done
for pc in "4 64" "8 128" "8 256"; do
  set -- $pc
  LLMC_ATTN_MIN_CHUNK=$2 .bin/llmc bench /tmp/w/traced$1.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/attn-pos$1-$2.json 2>&1 | grep -E 'prompt |rror'
  python3 bench/graph_trace_summary.py $OUT/attn-pos$1-$2.json --launches 6 | head -14; gzip -9 $OUT/attn-pos$1-$2.json
done
echo "== tests, ATTN_POS=8, min chunk default and 8 (the test's own)"
LLMC_EXPERIMENT_DEFINES="ATTN_POS=8" timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |replays|worst|panicked|result" | grep -v "^q[0-9]" | head -40
