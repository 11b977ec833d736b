#!/usr/bin/env bash
# After the one-trip merge of decode attention (attn-merge.log): (1) the GPU tests with
# LAST_BLOCK_ONE_FENCE=1 (common.cuh: only thread 0 fences before the last-block ticket);
# (2) compute-sanitizer racecheck of split-heavy decode attention (one layer, min chunk 8), both
# ways; (3) llama.cpp's Q8_0 and Q4_K_M files of the random Qwen2.5-1.5B shape
# (bench/peer_llamacpp.sh files) and bf16, each way, 128 tokens after 32 (two rounds) and
# 1,024; (4) a traced Q4_K_M step. .bin: llmc, cuda_vs_cpu (stripped), llama.cpp-src.tar.xz.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/merge-files.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
(bash bench/peer_llamacpp.sh .bin files > /tmp/w/files.log 2>&1; echo "files exit $?" >> /tmp/w/files.log) &
files=$!
echo "== tests, LAST_BLOCK_ONE_FENCE=1"
LLMC_EXPERIMENT_DEFINES="LAST_BLOCK_ONE_FENCE=1" timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |replays|worst|panicked|result" | grep -v "^q[0-9]" | head -40
wait $files; tail -5 /tmp/w/files.log
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b", 1), "cuda"), "/tmp/w/one")
print("one-layer model written")
PY
pids=""
for fence in 0 1; do
  export LLMC_EXPERIMENT_DEFINES="LAST_BLOCK_ONE_FENCE=$fence"
  .bin/llmc compile /tmp/w/one -o /tmp/w/one-$fence.plan --weights bf16 --max-seq-len 300 2>&1 | tail -1 | cut -c1-30 & pids="$pids $!"
  .bin/llmc compile /tmp/peers/model -o /tmp/w/bf16-$fence.plan --weights bf16 --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
  for f in Q8_0 Q4_K_M; do .bin/llmc compile /tmp/peers/$f.gguf -o /tmp/w/$f-$fence.plan --weights as-stored --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"; done
done
LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" .bin/llmc compile /tmp/peers/Q4_K_M.gguf -o /tmp/w/traced.plan --weights as-stored --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
wait $pids
unset LLMC_EXPERIMENT_DEFINES
for fence in 0 1; do
  echo "== compute-sanitizer racecheck, one layer, min chunk 8, 100-token prompt + 20 tokens, fence $fence"
  LLMC_ATTN_MIN_CHUNK=8 timeout 90 compute-sanitizer --tool racecheck --error-exitcode 9 .bin/llmc run /tmp/w/one-$fence.plan --prompt-ids $(seq -s, 1 100) --max-tokens 20 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
bench() { echo "[$1 fence $2, prompt $3] $(timeout 60 .bin/llmc bench /tmp/w/$1-$2.plan --prompt-len $3 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-80)"; }
for round in 1 2; do for f in Q4_K_M Q8_0 bf16; do for fence in 0 1; do bench $f $fence 32; done; done; done
for f in Q4_K_M Q8_0 bf16; do for fence in 0 1; do bench $f $fence 1024; done; done
.bin/llmc bench /tmp/w/traced.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/q4km.json 2>&1 | grep -E 'prompt |rror'
python3 bench/graph_trace_summary.py $OUT/q4km.json --launches 6 > /tmp/w/summary.txt; head -24 /tmp/w/summary.txt; gzip -9 $OUT/q4km.json
