#!/usr/bin/env bash
# llmc at 32ceeae (lane pointers, Q8_0 six chunks in flight) on llama.cpp's GGUF files of the
# random Qwen2.5-1.5B-shape model, as bench/peer_llamacpp.sh makes them (converter to BF16,
# llama-quantize to Q8_0 and Q4_K_M) but with a CPU-only llama-quantize (a minute's build
# instead of the CUDA build's six): no llama-bench in this call; its tg128 on these files,
# 2026-12-01 00:57 UTC, is in 2026-12-01-h200-peers.log. --weights as-stored, max_seq_len
# 8320 as there; 128 tokens after 32 (two rounds) and 1,024. .bin: llmc, llama.cpp-src.tar.xz.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
W=/tmp/peers; LCPP=$W/llama.cpp
mkdir -p $W
exec > >(tee $OUT/gguf-files.log) 2>&1
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
wait $build; echo "llama-quantize build exit $(cat $W/built)"; tail -1 $W/build.log
pids=""
for q in Q8_0 Q4_K_M; do (nice $LCPP/build/bin/llama-quantize $W/bf16.gguf $W/$q.gguf $q 2>&1 | tail -1) & pids="$pids $!"; done
wait $pids
ls -la $W/*.gguf
for f in Q8_0 Q4_K_M; do .bin/llmc compile $W/$f.gguf -o $W/$f.plan --weights as-stored --max-seq-len 8320 2>&1 | tail -1 | cut -c1-120; done
.bin/llmc inspect $W/Q4_K_M.plan 2>&1 | grep -iE "q4_k|q6_k|bf16" | head -6
for round in 1 2; do for f in Q8_0 Q4_K_M; do echo "[$f 32] $(timeout 60 .bin/llmc bench $W/$f.plan --prompt-len 32 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-90)"; done; done
for f in Q8_0 Q4_K_M; do echo "[$f 1024] $(timeout 60 .bin/llmc bench $W/$f.plan --prompt-len 1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-90)"; done
