#!/usr/bin/env bash
# #13: decode attention's merge of its splits in one trip through L2 (a thread loads a batch of
# splits' (max, sum) with its 4 elements and rescales online) instead of two (a warp per head
# for the (max, sum), a barrier, then the elements). Same binary pair in one call: .bin/llmc_old
# (before) and .bin/llmc (after); random Qwen2.5-1.5B shape, bf16, graph and persistent decode,
# 128 tokens after 32 / 1,024 / 4,096, min chunk 64 (default) and, graph only, 128 (LLMC_ATTN_MIN_CHUNK),
# two interleaved rounds; a traced graph step of the new one; the GPU tests and
# compute-sanitizer memcheck/racecheck/synccheck of a split-heavy run (min chunk 8).
# .bin: llmc, llmc_old, cuda_vs_cpu (stripped).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/attn-merge.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== tests"
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |replays|worst|panicked|result" | grep -v "^q[0-9]" | head -40
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b", 1), "cuda"), "/tmp/w/one")
print("one-layer model written")
PY
pids=""
for b in llmc llmc_old; do for decode in graph persistent; do
  .bin/$b compile /tmp/w/m -o /tmp/w/$b-$decode.plan --weights bf16 --decode $decode --max-seq-len 4352 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
done; done
.bin/llmc compile /tmp/w/one -o /tmp/w/one.plan --weights bf16 --max-seq-len 600 2>&1 | tail -1 | cut -c1-30 & pids="$pids $!"
LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" .bin/llmc compile /tmp/w/m -o /tmp/w/traced.plan --weights bf16 --max-seq-len 4352 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
wait $pids
for tool in memcheck racecheck synccheck; do
  echo "== compute-sanitizer $tool, one layer, min chunk 8, 300-token prompt + 40 tokens"
  LLMC_ATTN_MIN_CHUNK=8 timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/w/one.plan --prompt-ids $(seq -s, 1 300) --max-tokens 40 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
bench() { echo "[$1 $2 chunk $3, prompt $4] $(LLMC_ATTN_MIN_CHUNK=$3 timeout 60 .bin/$1 bench /tmp/w/$1-$2.plan --prompt-len $4 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-80)"; }
for round in 1 2; do for prompt in 32 1024 4096; do for dc in "graph 64" "graph 128" "persistent 64"; do for b in llmc_old llmc; do
  bench $b $dc $prompt
done; done; done; done
.bin/llmc bench /tmp/w/traced.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/attn-merge.json 2>&1 | grep -E 'prompt |rror'
python3 bench/graph_trace_summary.py $OUT/attn-merge.json --launches 6 > /tmp/w/summary.txt; head -30 /tmp/w/summary.txt; gzip -9 $OUT/attn-merge.json
