#!/usr/bin/env bash
# Run 2026-11-30 13:49 UTC (H200) at 0ff2c2d; log beside it. NB: verify_full_scale checked token-by-token prefill, not the batched one (llmc run --dump-logits prefilled token by token), so its four identical errors say nothing of the defines; fixed after this run. #16 asks to decide prefill's precision with numbers:
# keep the hi/lo split of f32 operands, or round them to bf16 in prefill only. This measures, for
# the default build and the experiment defines (LLMC_EXPERIMENT_DEFINES, read at plan compile):
# PG_SPLIT_X=0 (GEMM x rounded to bf16), PA_SPLIT=0 (attention operands rounded), both: the
# full-scale error against transformers f32 after a 1,024-token prompt and TTFT at 32/1,024/4,096.
# It also measures the event-timed bandwidth probes of branch wip-event-timing (.bin/llmc_event)
# and profiles one prefill GEMM launch. Build here: main's llmc as .bin/llmc, wip-event-timing's
# as .bin/llmc_event; carry both and .bin/COMMIT. (next-prefill-gemm.sh is the second call.)
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee $OUT/precision.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
for defines in "" "PG_SPLIT_X=0" "PA_SPLIT=0" "PG_SPLIT_X=0 PA_SPLIT=0"; do
  echo "== defines: '${defines:-none}'"
  LLMC_EXPERIMENT_DEFINES="$defines" timeout 150 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | grep "llmc vs hf f32"
  LLMC_EXPERIMENT_DEFINES="$defines" .bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 4200 2>&1 | tail -1 | cut -c1-40
  echo "bf16: $(timeout 90 .bin/llmc bench /tmp/w/p.plan --prompt-len 32,1024,4096 --gen 32 2>&1 | head -3 | grep -o 'TTFT.*)')"
done
.bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 4200 2>&1 | tail -1 | cut -c1-40  # default defines again
for bin in llmc llmc_event llmc llmc_event; do
  echo "$bin: $(timeout 60 .bin/$bin bench /tmp/w/p.plan --prompt-len 32 --gen 32 2>&1 | head -3 | grep -o 'ms/token.*GB/s)' | tr '\n' ' ')"
done
# what limits the prefill GEMM: one gate/up launch of a 1,024-token prompt (the third prefill_gemm
# of the first layer's chunk), Nsight Compute's throughput, warp-state and scheduler sections
timeout 150 ncu --kernel-name prefill_gemm --launch-skip 2 --launch-count 1 --section SpeedOfLight --section ComputeWorkloadAnalysis \
  --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section Occupancy \
  .bin/llmc run /tmp/w/p.plan --prompt-ids $(seq -s, 1 1024) --max-tokens 1 --ignore-eos 2>&1 | grep -vE "^==PROF==|^\s*$" | tail -90
# why a quantized plan's short prompt takes 16-26 ms (bf16: 6 ms): every kernel of a 32-token
# q4_k prefill, alone
.bin/llmc compile /tmp/w/m -o /tmp/w/q.plan --quantize q4_k --max-seq-len 256 2>&1 | tail -1 | cut -c1-40
timeout 120 ncu --metrics gpu__time_duration.sum --csv .bin/llmc run /tmp/w/q.plan --prompt-ids $(seq -s, 1 32) --max-tokens 1 --ignore-eos > /tmp/ncu-q.csv 2>/dev/null
python3 bench/ncu_kernel_totals.py /tmp/ncu-q.csv "32-token q4_k prefill + 1 decode step"
