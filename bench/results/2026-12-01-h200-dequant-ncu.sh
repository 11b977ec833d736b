#!/usr/bin/env bash
# Why block-format prefill still costs ~12 ms (Q4_K_M) / ~20 ms (Q8_0) more than bf16 at any
# prompt length (-peers-bench.log): kernel durations under ncu of one prefill of 32 tokens through
# a one-layer Qwen2.5-1.5B plan quantized to q8_0 and q4_k and its bf16 plan, every kernel.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/dequant-ncu.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b", 1), "cuda"), "/tmp/w/one")
print("one-layer model written")
PY
.bin/llmc compile /tmp/w/one -o /tmp/w/one-bf16.plan --weights bf16 --max-seq-len 300 2>&1 | tail -1 | cut -c1-60
for q in q4_k q8_0; do .bin/llmc compile /tmp/w/one -o /tmp/w/one-$q.plan --quantize $q --max-seq-len 300 2>&1 | tail -1 | cut -c1-60; done
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
for p in bf16 q8_0 q4_k; do
  echo "== $p: prefill of 32 tokens, kernel durations (ns)"
  timeout 150 $NCU --metrics gpu__time_duration.sum --csv .bin/llmc run /tmp/w/one-$p.plan --prompt-ids $(seq -s, 1 32) --max-tokens 1 --ignore-eos 2>&1 \
    | grep gpu__time_duration | awk -F'","' '{print $5, $NF}' | tr -d '"' | grep -v "^decode\|^sample\|^advance" | head -40
done
for p in bf16 q8_0 q4_k; do echo "[$p] $(timeout 60 .bin/llmc bench /tmp/w/one-$p.plan --prompt-len 32,256 --gen 16 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-120 | tr '\n' '|')"; done
