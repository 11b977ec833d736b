#!/usr/bin/env bash
# Prefill attention with a short prompt's long query blocks split into pieces (attention_pieces,
# merged by the last piece) against main (b368537, before rows128 + prefetch). Build here:
# main's llmc as .bin/llmc, the branch's llmc and cuda_vs_cpu as .bin/llmc_attn and
# .bin/cuda_vs_cpu_attn; carry them and .bin/COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/attention-pieces.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 170 .bin/cuda_vs_cpu_attn --ignored --nocapture --test-threads 1 prefill 2>&1 | grep -E "^test |worst|panicked|result"
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
save_model(random_model(make_config("qwen2.5-1.5b", 1), "cuda"), "/tmp/w/one")
print("models written")
PY
.bin/llmc_attn compile /tmp/w/one -o /tmp/one.plan --weights bf16 --max-seq-len 400 2>&1 | tail -1 | cut -c1-30
for tool in memcheck racecheck synccheck; do
  echo "== compute-sanitizer $tool, one Qwen2.5-1.5B layer, 300-token prompt (30 query blocks -> pieces) + 2 tokens"
  timeout 100 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc_attn run /tmp/one.plan --prompt-ids $(seq -s, 1 300) --max-tokens 2 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
echo "== full scale, batched prefill of 1,024 tokens (pieces) and of 256"
for len in 1024 256; do
timeout 120 python3 bench/verify_full_scale.py --llmc .bin/llmc_attn --out /tmp/verify$len --shapes qwen2.5-1.5b --prompt-len $len --steps 16 --max-seq-len 1100 2>&1 | grep -E "llmc vs hf|Error|error" | head -3
done
for bin in llmc llmc_attn; do .bin/$bin compile /tmp/w/m -o /tmp/w/$bin.plan --weights bf16 --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40; done
for round in 1 2; do for bin in llmc llmc_attn; do
  echo "$bin (round $round): $(timeout 90 .bin/$bin bench /tmp/w/$bin.plan --prompt-len 32,256,1024,4096,8192 --gen 16 2>&1 | head -3 | grep -o 'TTFT.*)')"
done; done
timeout 120 ncu --metrics gpu__time_duration.sum --csv .bin/llmc_attn run /tmp/w/llmc_attn.plan --prompt-ids $(seq -s, 1 1024) --max-tokens 1 --ignore-eos > /tmp/ncu.csv 2>/dev/null
python3 bench/ncu_kernel_totals.py /tmp/ncu.csv "1,024-token bf16 prefill + 1 decode step (llmc_attn)"
