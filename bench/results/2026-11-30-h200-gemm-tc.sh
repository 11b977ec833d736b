#!/usr/bin/env bash
# Device call (H200): the bf16-weight prefill GEMM on 128x128 tiles (wip-gemm-tc, .bin/llmc_tc)
# and with 2,048-row prefill passes on top (wip-gemm-tc-chunk, .bin/llmc_tcc, .bin/cuda_vs_cpu_tcc)
# against main (.bin/llmc, 0ff2c2d): GPU prefill tests, compute-sanitizer on both GEMM kernels,
# full-scale error of the batched prefill (llmc run --dump-logits prefills batched since 46651f3)
# with x split (default) and rounded to bf16 (PG_SPLIT_X=0), TTFT interleaved, per-kernel times.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/gemm-tc.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 170 .bin/cuda_vs_cpu_tcc --ignored --nocapture --test-threads 1 prefill block_format 2>&1 | grep -E "^test |worst|panicked|result"
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
save_model(random_model(make_config("qwen2.5-1.5b", 1), "cuda"), "/tmp/w/one")
print("models written")
PY
.bin/llmc_tcc compile /tmp/w/one -o /tmp/one.plan --weights bf16 --max-seq-len 400 2>&1 | tail -1 | cut -c1-30
for tool in memcheck racecheck; do
  echo "== compute-sanitizer $tool, one Qwen2.5-1.5B layer, 300-token prompt (gate/up 140 x 3 tiles whole, the rest split K) + 2 tokens"
  timeout 100 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc_tcc run /tmp/one.plan --prompt-ids $(seq -s, 1 300) --max-tokens 2 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
for defines in "" "PG_SPLIT_X=0"; do
  echo "== full scale, batched prefill of 1,024 tokens, llmc_tcc, defines '${defines:-none}'"
  LLMC_EXPERIMENT_DEFINES="$defines" timeout 120 python3 bench/verify_full_scale.py --llmc .bin/llmc_tcc --out /tmp/verify --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
done
for bin in llmc llmc_tc llmc_tcc; do .bin/$bin compile /tmp/w/m -o /tmp/w/$bin.plan --weights bf16 --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40; done
LLMC_EXPERIMENT_DEFINES="PG_SPLIT_X=0" .bin/llmc_tcc compile /tmp/w/m -o /tmp/w/round.plan --weights bf16 --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40
for round in 1 2; do
  for v in llmc:llmc llmc_tc:llmc_tc llmc_tcc:llmc_tcc llmc_tcc:round; do
    bin=${v%%:*}; plan=${v##*:}
    echo "$plan (round $round): $(timeout 90 .bin/$bin bench /tmp/w/$plan.plan --prompt-len 32,1024,4096,8192 --gen 16 2>&1 | head -3 | grep -o 'TTFT.*)')"
  done
done
echo "decode: $(timeout 60 .bin/llmc_tcc bench /tmp/w/llmc_tcc.plan --prompt-len 32 --gen 64 2>&1 | head -3 | grep -o 'ms/token.*GB/s)' | head -1)"
timeout 120 ncu --metrics gpu__time_duration.sum --csv .bin/llmc_tcc run /tmp/w/llmc_tcc.plan --prompt-ids $(seq -s, 1 1024) --max-tokens 1 --ignore-eos > /tmp/ncu.csv 2>/dev/null
python3 bench/ncu_kernel_totals.py /tmp/ncu.csv "1,024-token bf16 prefill + 1 decode step (llmc_tcc)"
