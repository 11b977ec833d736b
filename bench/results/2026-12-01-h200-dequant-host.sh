#!/usr/bin/env bash
# Where block-format prefill's extra TTFT goes (ncu, -dequant-ncu.log: the dequantize kernels
# take ~80 us a layer, the GEMMs as long as bf16's, yet a one-layer q8_0 plan's TTFT is 1.0-1.3
# ms against bf16's 0.34). .bin-xp/llmc is e04b991 plus two env switches in CudaBackend::prefill,
# not committed: XP_TIMING prints the host time to build and enqueue a chunk's launches and the
# wait for the GPU after; XP_SKIP_DEQUANT drops the dequantize launches (wrong results, timing only).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/dequant-host.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin-xp/COMMIT) + XP switches"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b", 4), "cuda"), "/tmp/w/four")
print("four-layer model written")
PY
.bin-xp/llmc compile /tmp/w/four -o /tmp/w/four-bf16.plan --weights bf16 --max-seq-len 2048 2>&1 | tail -1 | cut -c1-60
.bin-xp/llmc compile /tmp/w/four -o /tmp/w/four-q8_0.plan --quantize q8_0 --max-seq-len 2048 2>&1 | tail -1 | cut -c1-60
for p in bf16 q8_0; do
  echo "== $p, 4 layers, XP_TIMING, prompts of 32 then 1024"
  XP_TIMING=1 timeout 60 .bin-xp/llmc bench /tmp/w/four-$p.plan --prompt-len 32,1024 --gen 8 --reps 1 2>&1 | grep -E "xp:|prompt " | tail -8
  echo "[$p] $(timeout 60 .bin-xp/llmc bench /tmp/w/four-$p.plan --prompt-len 32,1024 --gen 16 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-120 | tr '\n' '|')"
done
echo "[q8_0 XP_SKIP_DEQUANT] $(XP_SKIP_DEQUANT=1 timeout 60 .bin-xp/llmc bench /tmp/w/four-q8_0.plan --prompt-len 32,1024 --gen 16 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-120 | tr '\n' '|')"
echo "[q8_0 CUDA_MODULE_LOADING=EAGER] $(CUDA_MODULE_LOADING=EAGER timeout 60 .bin-xp/llmc bench /tmp/w/four-q8_0.plan --prompt-len 32,1024 --gen 16 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-120 | tr '\n' '|')"
