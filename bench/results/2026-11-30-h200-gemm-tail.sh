#!/usr/bin/env bash
# wgmma GEMMs: the wide tiles' last wave (at most half the SMs) run as narrow tiles instead
# (wide_columns; gate/up at 1,024 rows: 560 wide tiles = 4 waves + 32 -> 528 wide + 64 narrow
# split twice). Probe (wide+tail vs wide, f64-checked), fixture tests, sanitizer on a full-size
# layer at 1,024 tokens (wide + tail), full scale, TTFT against main 7449a4a; and llama.cpp's
# build starts in the background for bench/peer_llamacpp.sh's second call. Build here: main's
# llmc as .bin/llmc_main, the change's llmc and cuda_vs_cpu as .bin/llmc, .bin/cuda_vs_cpu;
# .bin/llama.cpp-src.tar.xz; carry .bin.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
bash bench/peer_llamacpp.sh .bin build
exec > >(tee $OUT/gemm-tail.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"
nvcc -O3 -std=c++17 -arch=sm_90a -I kernels bench/probe/prefill_gemm_check.cu -o /tmp/pgc && /tmp/pgc | grep -E "gate_up|down 1024 |failures"
timeout 170 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 prefill 2>&1 | grep -E "^test |worst|panicked|result"
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b", 1), "cuda"), "/tmp/w/one")
print("one-layer model written")
PY
.bin/llmc compile /tmp/w/one -o /tmp/one.plan --weights bf16 --max-seq-len 1100 2>&1 | tail -1 | cut -c1-30
for tool in memcheck racecheck; do
  echo "== compute-sanitizer $tool, one Qwen2.5-1.5B layer, 1,024-token prompt (gate/up wide + narrow tail) + 2 tokens"
  timeout 120 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/one.plan --prompt-ids $(seq -s, 1 1024) --max-tokens 2 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
echo "== full scale, batched prefill of 1,024 tokens"
timeout 150 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
for bin in llmc_main llmc; do .bin/$bin compile /tmp/peers/model -o /tmp/w/$bin.plan --weights bf16 --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40; done
echo "(llama.cpp builds on every core meanwhile: TTFT here compares the two builds, not final figures)"
for round in 1 2; do for bin in llmc_main llmc; do
  echo "$bin (round $round): $(timeout 90 .bin/$bin bench /tmp/w/$bin.plan --prompt-len 32,256,1024,4096,8192 --gen 16 2>&1 | head -3 | grep -o 'TTFT.*)')"
done; done
echo "llama.cpp build: $(cat /tmp/peers/built 2>/dev/null || echo running); $(tail -1 /tmp/peers/build.log)"
