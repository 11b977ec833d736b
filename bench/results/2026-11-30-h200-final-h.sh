#!/usr/bin/env bash
# Final device run of this stop, first of two calls: starts llama.cpp's build in the background
# (bench/peer_llamacpp.sh build: ~6 min, converts a random Qwen2.5-1.5B-shape model to a BF16
# GGUF meanwhile), then verifies the working tree's llmc (.bin/llmc: the persistent attention
# units of two heads; the block-format GEMVs' residual and RoPE operands of a warp's first
# epilogue loaded right after the wait): every GPU test, the faults, compute-sanitizer memcheck and
# racecheck on a q8_0 plan (graph) and memcheck + racecheck on the persistent path (splits of 8),
# full scale vs transformers f32 on both paths; then decode of the Qwen2.5-1.5B shape, bf16 on
# both paths after 32 (two rounds), 1,024 and 4,096 prompt tokens, and --quantize q4_k / q8_0
# beside .bin/llmc_before (the same kernels without the operands ahead). The second call,
# 2026-11-30-h200-final-h-peers.sh, was to run llama.cpp and llmc on the same GGUF files (not run:
# the device time went to verifying the revert of this call's block-format change).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
bash bench/peer_llamacpp.sh .bin build > /dev/null 2>&1
exec > >(tee $OUT/final-h.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
ls -la /tmp/peers/*.gguf 2>&1 | tail -1
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |replays|q4_k|q8_0|q6_k|panicked|result" | head -40
timeout 50 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
.bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/fq.plan --max-seq-len 64 --quantize q8_0 2>&1 | tail -1 | cut -c1-40
LLMC_ATTN_MIN_CHUNK=8 .bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/fp.plan --max-seq-len 64 --decode persistent 2>&1 | tail -1 | cut -c1-40
for run in "fq memcheck" "fq racecheck" "fp memcheck" "fp racecheck"; do
  set -- $run
  echo "== compute-sanitizer $2, $1 (fq: q8_0 graph, fp: bf16 persistent), qwen2_tied, 20-token prompt, splits of 8"
  LLMC_ATTN_MIN_CHUNK=8 timeout 60 compute-sanitizer --tool $2 --error-exitcode 9 .bin/llmc run /tmp/$1.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
for d in persistent graph; do
  echo "== full scale, $d"
  timeout 120 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-$d --shapes qwen2.5-1.5b --decode $d 2>&1 | grep -E "qwen|PASS|FAIL|Error|error" | head -4
done
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
.bin/llmc compile /tmp/w/m -o /tmp/w/graph.plan --weights bf16 --max-seq-len 4352 2>&1 | tail -1 | cut -c1-40
.bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 4352 --decode persistent 2>&1 | tail -1 | cut -c1-40
for q in q4_k q8_0; do .bin/llmc compile /tmp/w/m -o /tmp/w/$q.plan --quantize $q --max-seq-len 4352 2>&1 | tail -1 | cut -c1-40; done
for round in 1 2; do
  for path in graph p q4_k q8_0; do echo "[$path, prompt 32, round $round] $(timeout 60 .bin/llmc bench /tmp/w/$path.plan --prompt-len 32 --gen 128 2>&1 | head -1 | cut -c1-80)"; done
  for q in q4_k q8_0; do echo "[$q llmc_before, prompt 32, round $round] $(timeout 60 .bin/llmc_before bench /tmp/w/$q.plan --prompt-len 32 --gen 128 2>&1 | head -1 | cut -c1-80)"; done
done
for prompt in 1024 4096; do
  for path in graph p q4_k q8_0; do echo "[$path, prompt $prompt] $(timeout 60 .bin/llmc bench /tmp/w/$path.plan --prompt-len $prompt --gen 128 2>&1 | head -1 | cut -c1-80)"; done
done
echo "llama.cpp build: $(cat /tmp/peers/built 2>/dev/null || echo running); $(tail -1 /tmp/peers/build.log 2>/dev/null | cut -c1-100)"
