#!/usr/bin/env bash
# llama.cpp and llmc on the very same GGUF files, one device run: a random Qwen2.5-1.5B-shape
# model converted by llama.cpp's converter (bench/peer_gguf.py) to BF16, quantized by
# llama-quantize to Q8_0 and Q4_K_M; llama-bench (flash attention, all layers on the GPU)
# and llmc bench (BF16 as bf16, the others as stored) at prompts of 32..8,192 tokens and 128
# generated tokens; transformers eager beside them. From the repo root on the GPU machine, with
# llmc in BIN_DIR and llama.cpp's source tarball (../shared/peers) there too:
#   bash bench/peer_llamacpp.sh BIN_DIR build   # starts llama.cpp's build (~6 min) in the
#                                              # background and converts the model meanwhile
#   bash bench/peer_llamacpp.sh BIN_DIR bench   # the next call, on the same warm machine
#   bash bench/peer_llamacpp.sh BIN_DIR files   # the GGUF files alone, in one call (~90 s): a
#                                              # CPU-only llama-quantize, no llama-bench
#                                              # (bench/results/2026-12-01-h200-gguf-files.sh)
# Results: $OUT/peers.log (everything), $OUT/llama-bench.md, $OUT/llmc-bench-*.txt, $OUT/baseline.json.
# Environment: PROMPTS (prompt lengths, default below), TRANSFORMERS=0 skips the transformers
# baseline.
set -uo pipefail
BIN=$(realpath "${1:?BIN_DIR}")
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
W=/tmp/peers
LCPP=$W/llama.cpp
PROMPTS=${PROMPTS:-32,256,1024,4096,8192}
mkdir -p $W
exec > >(tee -a $OUT/peers.log) 2>&1
echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC') peer_llamacpp.sh $2, llmc $(cat $BIN/COMMIT 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
# The random model converted to $W/bf16.gguf (the converter is llama.cpp's Python).
convert() {
  python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/peers/model")
print("model written")
PY
  timeout 300 python3 bench/peer_gguf.py $LCPP /tmp/peers/model $W/bf16.gguf 2>&1 | tail -2
}
case $2 in
build)
  tar xJf $BIN/llama.cpp-src.tar.xz -C $W
  (cd $LCPP && setsid nohup bash -c "cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DCMAKE_BUILD_TYPE=Release > $W/build.log 2>&1 \
      && cmake --build build -j 16 --target llama-bench llama-quantize >> $W/build.log 2>&1; echo \$? > $W/built" > /dev/null 2>&1 &)
  convert
  ls -la $W/*.gguf
  ;;
files)
  tar xJf $BIN/llama.cpp-src.tar.xz -C $W
  (cd $LCPP && cmake -B build -DGGML_CUDA=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
     -DCMAKE_BUILD_TYPE=Release > $W/build.log 2>&1 && cmake --build build -j 16 --target llama-quantize >> $W/build.log 2>&1; echo $? > $W/built) &
  build=$!
  convert
  wait $build
  echo "llama-quantize build exit $(cat $W/built)"
  pids=""  # (a bare `wait` would wait for the tee above too)
  for q in Q8_0 Q4_K_M; do ($LCPP/build/bin/llama-quantize $W/bf16.gguf $W/$q.gguf $q 2>&1 | tail -1) & pids="$pids $!"; done
  wait $pids
  ls -la $W/*.gguf
  ;;
bench)
  for i in $(seq 1 60); do [ -e $W/built ] && break; sleep 5; done
  echo "llama.cpp build exit $(cat $W/built 2>/dev/null || echo 'not finished')"; tail -2 $W/build.log
  for q in Q8_0 Q4_K_M; do $LCPP/build/bin/llama-quantize $W/bf16.gguf $W/$q.gguf $q 2>&1 | tail -1; done
  ls -la $W/*.gguf
  for f in bf16 Q8_0 Q4_K_M; do
    weights=as-stored; [ $f = bf16 ] && weights=bf16
    $BIN/llmc compile $W/$f.gguf -o $W/$f.plan --weights $weights --max-seq-len 8320 2>&1 | tail -1 | cut -c1-120
  done
  for f in bf16 Q8_0 Q4_K_M; do
    echo "== llama-bench $f"
    timeout 150 $LCPP/build/bin/llama-bench -m $W/$f.gguf -p $PROMPTS -n 128 -ngl 99 -fa 1 -r 3 -o md 2>&1 | grep -E "^\|" | tee -a $OUT/llama-bench.md
    echo "== llmc bench $f"
    timeout 150 $BIN/llmc bench $W/$f.plan --prompt-len $PROMPTS --gen 128 2>&1 | tee $OUT/llmc-bench-$f.txt | grep -v "^ *$"
  done
  [ "${TRANSFORMERS:-1}" = 0 ] && exit 0
  echo "== transformers eager (same shape, random bf16 weights)"
  timeout 150 python3 bench/transformers_baseline.py --out $OUT/baseline.json --skip-compile --reps 3 2>&1 | tail -4
  ;;
esac
