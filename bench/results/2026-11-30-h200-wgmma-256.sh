#!/usr/bin/env bash
# Device call (H200): the wgmma prefill GEMM at 128 x 256 tiles, row tiles fastest, split K only
# to fill the SMs once (.bin/llmc_w, .bin/cuda_vs_cpu_w; 2,048-row passes). First the kernel
# alone (bench/probe/prefill_gemm_check.cu vs an f64 reference, timed) as built and with each
# change undone by -D (PGW_BN=128, PGW_RASTER=0) and with x rounded (PG_SPLIT_X=0); stops if
# the built kernel fails. Then llmc's GPU prefill tests, compute-sanitizer, full-scale error of
# the batched prefill, TTFT interleaved against main (.bin/llmc, 0ff2c2d) and the mma.sync
# 128x128 kernel (.bin/llmc_tcc, d7d6207), and per-kernel times of a 1,024-token prefill.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/wgmma-256.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for v in "" "-DPGW_BN=128" "-DPGW_RASTER=0" "-DPG_SPLIT_X=0"; do
  nvcc -O3 -std=c++17 -arch=sm_90a $v -I kernels bench/probe/prefill_gemm_check.cu -o "/tmp/pgc$v" 2>&1 | grep -v "^$" | head -20
done
timeout 100 /tmp/pgc || { echo "kernel check failed: stopping"; exit 1; }
for v in "-DPGW_BN=128" "-DPGW_RASTER=0" "-DPG_SPLIT_X=0"; do
  echo "== $v (rounded x: errors of order 1e-3 expected)"
  timeout 60 "/tmp/pgc$v" | grep wgmma | grep -E "1024|2048|32"
done
timeout 170 .bin/cuda_vs_cpu_w --ignored --nocapture --test-threads 1 prefill block_format 2>&1 | grep -E "^test |worst|panicked|result"
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
save_model(random_model(make_config("qwen2.5-1.5b", 1), "cuda"), "/tmp/w/one")
print("models written")
PY
.bin/llmc_w compile /tmp/w/one -o /tmp/one.plan --weights bf16 --max-seq-len 400 2>&1 | tail -1 | cut -c1-30
for tool in memcheck racecheck synccheck; do
  echo "== compute-sanitizer $tool, one Qwen2.5-1.5B layer, 300-token prompt (gate/up 140 x 3 tiles whole, the rest split K) + 2 tokens"
  timeout 100 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc_w run /tmp/one.plan --prompt-ids $(seq -s, 1 300) --max-tokens 2 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
echo "== full scale, batched prefill of 1,024 tokens, llmc_w"
timeout 120 python3 bench/verify_full_scale.py --llmc .bin/llmc_w --out /tmp/verify --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
for bin in llmc llmc_tcc llmc_w; do .bin/$bin compile /tmp/w/m -o /tmp/w/$bin.plan --weights bf16 --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40; done
LLMC_EXPERIMENT_DEFINES="PG_SPLIT_X=0" .bin/llmc_w compile /tmp/w/m -o /tmp/w/round.plan --weights bf16 --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40
for round in 1 2; do
  for v in llmc:llmc llmc_tcc:llmc_tcc llmc_w:llmc_w llmc_w:round; do
    bin=${v%%:*}; plan=${v##*:}
    echo "$plan (round $round): $(timeout 90 .bin/$bin bench /tmp/w/$plan.plan --prompt-len 32,256,1024,4096,8192 --gen 16 2>&1 | head -3 | grep -o 'TTFT.*)')"
  done
done
timeout 120 ncu --metrics gpu__time_duration.sum --csv .bin/llmc_w run /tmp/w/llmc_w.plan --prompt-ids $(seq -s, 1 1024) --max-tokens 1 --ignore-eos > /tmp/ncu.csv 2>/dev/null
python3 bench/ncu_kernel_totals.py /tmp/ncu.csv "1,024-token bf16 prefill + 1 decode step (llmc_w)"
