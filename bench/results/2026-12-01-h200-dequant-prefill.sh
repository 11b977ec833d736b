#!/usr/bin/env bash
# Block-format prefill through a bf16 scratch (kernels/dequantize.cu, then the bf16 GEMMs) and
# graph attention in clusters of 4 by default: (1) every GPU test (the block-format test compares
# GPU and CPU prefill, both now reading the blocks rounded to bf16), the fault tests; (2)
# compute-sanitizer memcheck of a one-layer plan quantized to q4_k and q8_0 (prefill of 100 tokens
# + 20 decode steps), racecheck and synccheck of the q4_k one. Meanwhile llama.cpp's CUDA build
# starts (bench/peer_llamacpp.sh build, niced) for the next call, which times both on the same
# GGUF files. No timings here (the build shares the CPUs).
# .bin: llmc, cuda_vs_cpu, cuda_faults (stripped), llama.cpp-src.tar.xz, COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/dequant-prefill.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
nice -n 10 bash bench/peer_llamacpp.sh .bin build > /tmp/w/build-call.log 2>&1
tail -4 /tmp/w/build-call.log
timeout 300 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |replays|FFN|cluster|panicked|result" | head -60
timeout 60 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |result"
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b", 1), "cuda"), "/tmp/w/one")
print("one-layer model written")
PY
for q in q4_k q8_0; do .bin/llmc compile /tmp/w/one -o /tmp/w/one-$q.plan --quantize $q --max-seq-len 300 2>&1 | tail -1 | cut -c1-60; done
pids=""
for run in "memcheck q4_k" "memcheck q8_0" "racecheck q4_k" "synccheck q4_k"; do
  set -- $run
  (timeout 240 compute-sanitizer --tool $1 --error-exitcode 9 .bin/llmc run /tmp/w/one-$2.plan --prompt-ids $(seq -s, 1 100) --max-tokens 20 --ignore-eos > /tmp/w/san-$1-$2.log 2>&1; echo "exit $?" >> /tmp/w/san-$1-$2.log) & pids="$pids $!"
done
wait $pids
for run in "memcheck q4_k" "memcheck q8_0" "racecheck q4_k" "synccheck q4_k"; do
  set -- $run; echo "== compute-sanitizer $1, one layer --quantize $2, 100-token prompt + 20 tokens"; tail -2 /tmp/w/san-$1-$2.log
done
echo "llama.cpp build: $(cat /tmp/peers/built 2>/dev/null || echo 'still running')"; tail -1 /tmp/peers/build.log
