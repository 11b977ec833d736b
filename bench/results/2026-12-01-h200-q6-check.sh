#!/usr/bin/env bash
# Not run yet (the device time of 2026-12-01 ran out; Q6_BATCH went back to 4): Q6_K with three
# chunks in flight, LLMC_EXPERIMENT_DEFINES="Q6_BATCH=3" on HEAD's binaries (kernels are
# compiled when a plan is, so no rebuild): the block-format GPU test (every format, FFN 512
# and 6,144, GPU vs CPU) and compute-sanitizer memcheck and racecheck of a Q6_K plan. If clean,
# Q6_BATCH's default becomes 3 (quant.cu). .bin: llmc, cuda_vs_cpu (stripped).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/q6-check.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
export LLMC_EXPERIMENT_DEFINES="Q6_BATCH=3"
timeout 120 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 block_format 2>&1 | grep -E "^test |FFN|panicked|result" | head -20
python3 -c "import json; c = json.load(open('tests/fixtures/qwen2_tied/config.json')); c.update(hidden_size=256, intermediate_size=6144, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False); json.dump(c, open('/tmp/blockfix6k.json', 'w'))"
python3 bench/make_synthetic_model.py /tmp/blockfix6k.json /tmp/blockfix6k 2>&1 | tail -1
.bin/llmc compile /tmp/blockfix6k -o /tmp/bf-q6_k.plan --quantize q6_k --max-seq-len 128 2>&1 | tail -1 | cut -c1-30
for tool in memcheck racecheck; do
  echo "== compute-sanitizer $tool, q6_k, FFN 6144"
  timeout 45 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/bf-q6_k.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
