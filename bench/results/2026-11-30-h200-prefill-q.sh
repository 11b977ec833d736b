#!/usr/bin/env bash
# Device run for prefill_gemm_q (block-format prefill GEMMs dequantize their weight tiles in shared
# memory; the commit is printed from .bin/COMMIT), as 2026-11-30-h200-evict-first.sh with 70-token
# prompts under compute-sanitizer (two tiles of prompt rows), and TTFT beside .bin/llmc_old (the
# commit before: dequant_split_q into scratch, then prefill_gemm_split) in the same run: GPU tests (block formats on FFN
# 512 and 6,144 fixtures, and the bf16 regression on both decode paths), faults, compute-sanitizer
# on block-format plans of every format and on a bf16 plan, then decode/TTFT of bf16 vs
# --quantize q4_k / q8_0 plans of the Qwen2.5-1.5B shape. .bin holds llmc and the cuda_vs_cpu /
# cuda_faults test binaries (cargo test --release --no-run) and .bin/blockfix6k, a 2-layer Qwen2
# of hidden 256 and FFN 6,144 (bench/make_synthetic_model.py on the config of
# tests/common's block_fixture with intermediate_size 6144), whose down projection's rows the
# tensor-core GEMV cuts into 96 chunks of 64 over 16 warps.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/prefill-q.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 170 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |worst|replays|draws|top_logprobs|changes|panicked|result|^q[0-9]" | head -70
timeout 60 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
for w in q8_0 q4_0 q4_k q5_k q6_k; do
  .bin/llmc compile .bin/blockfix6k -o /tmp/bf-$w.plan --quantize $w --max-seq-len 128 2>&1 | tail -1 | cut -c1-30
  tools="memcheck"; [ $w = q4_k ] && tools="memcheck racecheck synccheck"; [ $w = q6_k ] && tools="memcheck racecheck"
  for tool in $tools; do
    echo "== compute-sanitizer $tool, $w, FFN 6144, 70-token prompt + 8 tokens"
    timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/bf-$w.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
  done
done
.bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/fp.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-30
echo "== compute-sanitizer memcheck, bf16 qwen3_untied, graph"
LLMC_ATTN_MIN_CHUNK=8 timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 .bin/llmc run /tmp/fp.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
for w in bf16 q4_k q8_0; do
  if [ $w = bf16 ]; then flag="--weights bf16"; else flag="--quantize $w"; fi
  .bin/llmc compile /tmp/w/m -o /tmp/w/$w.plan $flag 2>&1 | tail -1 | cut -c1-70
  echo "$w: $(timeout 60 .bin/llmc bench /tmp/w/$w.plan --prompt-len 32,1024 --gen 128 2>&1 | head -3 | tr '\n' ' ')"
done
for w in q4_k q8_0; do
  .bin/llmc_old compile /tmp/w/m -o /tmp/w/$w-old.plan --quantize $w 2>&1 | tail -1 | cut -c1-70
  echo "$w (llmc_old): $(timeout 60 .bin/llmc_old bench /tmp/w/$w-old.plan --prompt-len 32,1024 --gen 128 2>&1 | head -3 | tr '\n' ' ')"
done
