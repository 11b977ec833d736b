#!/usr/bin/env bash
# Q6_K GEMV warps with 4 (committed), 3 or 2 chunks in flight (Q6_BATCH, a compile-time define),
# on llama.cpp's Q4_K_M file (its LM head and half its down projections are Q6_K) made as in
# -gguf-files.sh, and on --quantize q6_k. 128 tokens after 32, two interleaved rounds.
# .bin: llmc (HEAD with Q6_BATCH settable), llama.cpp-src.tar.xz.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
W=/tmp/peers; LCPP=$W/llama.cpp
mkdir -p $W /tmp/w
exec > >(tee $OUT/q6-batch.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
tar xJf .bin/llama.cpp-src.tar.xz -C $W
(cd $LCPP && cmake -B build -DGGML_CUDA=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
   -DCMAKE_BUILD_TYPE=Release > $W/build.log 2>&1 && cmake --build build -j 16 --target llama-quantize >> $W/build.log 2>&1; echo $? > $W/built) &
build=$!
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/peers/model")
print("model written")
PY
timeout 300 python3 bench/peer_gguf.py $LCPP /tmp/peers/model $W/bf16.gguf 2>&1 | tail -1
wait $build; echo "llama-quantize build exit $(cat $W/built)"
$LCPP/build/bin/llama-quantize $W/bf16.gguf $W/Q4_K_M.gguf Q4_K_M 2>&1 | tail -1
pids=""
for b in 4 3 2; do
  LLMC_EXPERIMENT_DEFINES="Q6_BATCH=$b" .bin/llmc compile $W/Q4_K_M.gguf -o /tmp/w/km-$b.plan --weights as-stored --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
  LLMC_EXPERIMENT_DEFINES="Q6_BATCH=$b" .bin/llmc compile /tmp/peers/model -o /tmp/w/q6-$b.plan --quantize q6_k --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
done
wait $pids
for round in 1 2; do for p in km q6; do for b in 4 3 2; do
  echo "[$p Q6_BATCH=$b] $(timeout 60 .bin/llmc bench /tmp/w/$p-$b.plan --prompt-len 32 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-90)"
done; done; done
