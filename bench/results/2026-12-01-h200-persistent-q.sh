#!/usr/bin/env bash
# Block-format steps in the persistent decode kernel (PK_*_Q, compiled in with PK_BLOCK_FORMATS
# for a persistent plan with such weights; a `_q` GEMV's tasks are tiles of 16 rows). (1) The
# block-format GPU test (graph at FFN 512 and 6,144, persistent at 6,144), the fixture test on
# both paths, 10,000 persistent replays; (2) compute-sanitizer memcheck and racecheck of a
# one-layer q4_k persistent plan; (3) llama.cpp's Q4_K_M and Q8_0 files (peer_llamacpp.sh files)
# as stored, persistent against graph, 128 tokens after 32, two rounds.
# .bin: llmc, cuda_vs_cpu, cuda_faults (stripped), llama.cpp-src.tar.xz, COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/persistent-q.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
(bash bench/peer_llamacpp.sh .bin files > /tmp/w/files.log 2>&1; echo "files exit $?" >> /tmp/w/files.log) &
files=$!
timeout 330 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 block_format persistent_decode cuda_matches_cpu 2>&1 | grep -E "^test |Persistent|FFN|replays|panicked|result" | head -60
wait $files; tail -2 /tmp/w/files.log
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b", 1), "cuda"), "/tmp/w/one")
print("one-layer model written")
PY
pids=""
.bin/llmc compile /tmp/w/one -o /tmp/w/one-q4_k-p.plan --quantize q4_k --decode persistent --max-seq-len 300 2>&1 | tail -1 | cut -c1-80 & pids="$pids $!"
for f in Q4_K_M Q8_0; do for d in graph persistent; do
  .bin/llmc compile /tmp/peers/$f.gguf -o /tmp/w/$f-$d.plan --weights as-stored --decode $d --max-seq-len 8320 2>&1 | tail -1 | cut -c1-100 & pids="$pids $!"
done; done
wait $pids
pids=""
for tool in memcheck racecheck; do
  (timeout 150 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/w/one-q4_k-p.plan --prompt-ids $(seq -s, 1 40) --max-tokens 20 --ignore-eos > /tmp/w/san-$tool.log 2>&1; echo "exit $?" >> /tmp/w/san-$tool.log) & pids="$pids $!"
done
wait $pids
for tool in memcheck racecheck; do echo "== compute-sanitizer $tool, one layer --quantize q4_k --decode persistent, 40-token prompt + 20 tokens"; tail -2 /tmp/w/san-$tool.log; done
for round in 1 2; do for f in Q4_K_M Q8_0; do for d in graph persistent; do
  echo "[$f $d round $round] $(timeout 60 .bin/llmc bench /tmp/w/$f-$d.plan --prompt-len 32 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-110)"
done; done; done
