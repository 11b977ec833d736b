#!/usr/bin/env bash
# First device call for branch wip-next (main + wip-warp-staging + wip-prefill-cached-tiles +
# wip-read-roofline + wip-prefill-split-k, none of them run on a GPU yet). Build here first:
#   git checkout wip-next && cargo build --release && cp target/release/llmc .bin/llmc
#   cargo test --release --no-run --test cuda_vs_cpu --test cuda_faults  (copy both to .bin/)
#   git checkout main && cargo build --release && cp target/release/llmc .bin/llmc_main
#   git rev-parse --short wip-next > .bin/COMMIT
# and carry .bin/llmc, .bin/llmc_main, .bin/cuda_vs_cpu, .bin/cuda_faults, .bin/blockfix6k,
# .bin/COMMIT (about 61 MB). Then: every GPU test and fault, compute-sanitizer on block-format plans
# (70-token prompts: prefill_gemm_q with split K, the per-warp staging in decode) and on a bf16
# fixture (split K on its small GEMMs), and decode/TTFT of main vs wip-next in the same call.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/next.log) 2>&1
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
for tool in memcheck racecheck; do
echo "== compute-sanitizer $tool, bf16 qwen3_untied, graph (split-K prefill)"
LLMC_ATTN_MIN_CHUNK=8 timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fp.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
for bin in llmc_main llmc; do
  for w in bf16 q4_k q8_0; do
    if [ $w = bf16 ]; then flag="--weights bf16"; else flag="--quantize $w"; fi
    .bin/$bin compile /tmp/w/m -o /tmp/w/$w-$bin.plan $flag 2>&1 | tail -1 | cut -c1-70
    echo "$w ($bin): $(timeout 90 .bin/$bin bench /tmp/w/$w-$bin.plan --prompt-len 32,128,1024 --gen 128 2>&1 | head -3 | tr '\n' ' ')"
    rm -f /tmp/w/$w-$bin.plan
  done
done
