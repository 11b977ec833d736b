#!/usr/bin/env bash
# wgmma GEMMs fed by the bulk tensor copy engine (TMA): one thread requests each weight stage as
# boxes of 64 rows x 64 through the weight's tensor map, the stage's mbarrier counts the bytes
# (was: a cp.async ring, 8-16 16-byte copies a thread a stage). Probe first (stops here if any
# kernel fails), then fixture tests, sanitizer, full scale, TTFT against main. Build here: main's
# llmc as .bin/llmc_main, this branch's llmc and cuda_vs_cpu as .bin/llmc, .bin/cuda_vs_cpu.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/tma.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"
nvcc -O3 -std=c++17 -arch=sm_90a -I kernels bench/probe/prefill_gemm_check.cu -lcuda -o /tmp/pgc || exit 1
timeout 60 /tmp/pgc | tee /tmp/pgc.log | grep -E "1024|2048|odd|failures|failed|error"
grep -q "^0 failures" /tmp/pgc.log || { echo "probe failed: stopping"; exit 1; }
timeout 170 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 prefill 2>&1 | grep -E "^test |worst|panicked|result"
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
save_model(random_model(make_config("qwen2.5-1.5b", 1), "cuda"), "/tmp/w/one")
print("models written")
PY
.bin/llmc compile /tmp/w/one -o /tmp/one.plan --weights bf16 --max-seq-len 1100 2>&1 | tail -1 | cut -c1-30
for tool in memcheck racecheck synccheck; do
  for len in 1024 300; do
    echo "== compute-sanitizer $tool, one Qwen2.5-1.5B layer, $len-token prompt + 2 tokens"
    timeout 100 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/one.plan --prompt-ids $(seq -s, 1 $len) --max-tokens 2 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
  done
done
echo "== full scale, batched prefill of 1,024 tokens"
timeout 150 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
for bin in llmc_main llmc; do .bin/$bin compile /tmp/w/m -o /tmp/w/$bin.plan --weights bf16 --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40; done
for round in 1 2; do for bin in llmc_main llmc; do
  echo "$bin (round $round): $(timeout 90 .bin/$bin bench /tmp/w/$bin.plan --prompt-len 32,256,1024,4096,8192 --gen 16 2>&1 | head -3 | grep -o 'TTFT.*)')"
done; done
