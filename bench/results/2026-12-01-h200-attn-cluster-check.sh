#!/usr/bin/env bash
# Run 2026-12-01 ~09:25 UTC (prepared in Stop 32): decode attention with thread block clusters
# (LLMC_ATTN_CLUSTER, graph path, off by default) as of 030c383, where a step merges
# through distributed shared memory only when its active slices fit the first cluster.
# -attn-cluster.log (the first form, every cluster merging and the clusters' parts merged through
# L2) measured clusters of 4 at 1.220 ms/token after 32 tokens against 1.239-1.252 without, but
# clusters of 8 at 1.468-1.474 after 1,024 against 1.323-1.324. Here: (1) every GPU test with
# LLMC_ATTN_CLUSTER unset (the fixture test sets it itself for its cluster cases) and
# compute-sanitizer memcheck, racecheck and synccheck of a one-layer plan with clusters of 4 and 8
# (min chunk 8, so 2..8 active slices merge in the cluster, then more through L2); (2) random
# Qwen2.5-1.5B shape, bf16, graph decode with clusters 1 / 2 / 4 / 8 after 32 and 1,024 tokens,
# 1 / 4 after 4,096, two interleaved rounds; (3) llama.cpp's Q4_K_M and Q8_0 files (bench/peer_llamacpp.sh
# files) with clusters 1 / 4, after 32 tokens, two rounds (#15 asks 850 tok/s of Q4_K_M).
# .bin: llmc, cuda_vs_cpu, cuda_faults (stripped), llama.cpp-src.tar.xz.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/attn-cluster-check.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
(bash bench/peer_llamacpp.sh .bin files > /tmp/w/files.log 2>&1; echo "files exit $?" >> /tmp/w/files.log) &
files=$!
timeout 240 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |replays|cluster [48]|panicked|result" | grep -v "^q[0-9]" | head -40
timeout 60 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |result"
wait $files; tail -2 /tmp/w/files.log
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b", 1), "cuda"), "/tmp/w/one")
print("one-layer model written")
PY
pids=""
.bin/llmc compile /tmp/w/one -o /tmp/w/one.plan --weights bf16 --max-seq-len 300 2>&1 | tail -1 | cut -c1-30 & pids="$pids $!"
.bin/llmc compile /tmp/peers/model -o /tmp/w/bf16.plan --weights bf16 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
for f in Q4_K_M Q8_0; do .bin/llmc compile /tmp/peers/$f.gguf -o /tmp/w/$f.plan --weights as-stored 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"; done
wait $pids
# The six sanitizer runs side by side (each alone can take a minute or more), logs read after.
pids=""
for c in 4 8; do for tool in memcheck racecheck synccheck; do
  (LLMC_ATTN_CLUSTER=$c LLMC_ATTN_MIN_CHUNK=8 timeout 150 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/w/one.plan --prompt-ids $(seq -s, 1 100) --max-tokens 20 --ignore-eos > /tmp/w/san-$tool-$c.log 2>&1; echo "exit $?" >> /tmp/w/san-$tool-$c.log) & pids="$pids $!"
done; done
wait $pids
for c in 4 8; do for tool in memcheck racecheck synccheck; do
  echo "== compute-sanitizer $tool, one layer, cluster $c, min chunk 8, 100-token prompt + 20 tokens"; tail -2 /tmp/w/san-$tool-$c.log
done; done
bench() { echo "[$1 cluster $2, prompt $3] $(LLMC_ATTN_CLUSTER=$2 timeout 60 .bin/llmc bench /tmp/w/$1.plan --prompt-len $3 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-80)"; }
for round in 1 2; do
  for prompt in 32 1024; do for c in 1 2 4 8; do bench bf16 $c $prompt; done; done
  for c in 1 4; do bench bf16 $c 4096; done
  for f in Q4_K_M Q8_0; do for c in 1 4; do bench $f $c 32; done; done
done
