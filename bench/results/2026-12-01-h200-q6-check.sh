#!/usr/bin/env bash
# Not run yet (the device time of 2026-12-01 ran out). For the next device session, on HEAD's
# binaries (kernels are compiled when a plan is, so the variants need no rebuild):
#   A: Q6_K with three chunks in flight (LLMC_EXPERIMENT_DEFINES="Q6_BATCH=3"), measured faster
#      (-q6-batch.log) but not yet tested, so Q6_BATCH stays 4;
#   B: A plus Q_FOLD_OFFSET=1 (quant.cu: Q8_0, Q4_0 and Q6_K offsets through one sum a row).
# For each: the block-format GPU test (every format, FFN 512 and 6,144, GPU vs CPU) and
# compute-sanitizer memcheck and racecheck of Q6_K and Q8_0 plans; then decode of llama.cpp's
# Q8_0 and Q4_K_M files (bench/peer_llamacpp.sh files) and --quantize q6_k, two interleaved
# rounds, 128 tokens after 32. If clean and faster, the defaults change in quant.cu.
# .bin: llmc, cuda_vs_cpu (stripped), llama.cpp-src.tar.xz.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/q6-check.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
(bash bench/peer_llamacpp.sh .bin files > /tmp/w/files.log 2>&1; echo "files exit $?" >> /tmp/w/files.log) &
files=$!
python3 -c "import json; c = json.load(open('tests/fixtures/qwen2_tied/config.json')); c.update(hidden_size=256, intermediate_size=6144, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False); json.dump(c, open('/tmp/blockfix6k.json', 'w'))"
python3 bench/make_synthetic_model.py /tmp/blockfix6k.json /tmp/blockfix6k 2>&1 | tail -1
VARIANTS=("" "Q6_BATCH=3" "Q6_BATCH=3 Q_FOLD_OFFSET=1")
for v in 1 2; do
  export LLMC_EXPERIMENT_DEFINES="${VARIANTS[$v]}"
  echo "== variant $v: $LLMC_EXPERIMENT_DEFINES"
  timeout 120 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 block_format 2>&1 | grep -E "^test |FFN|panicked|result" | head -20
  for w in q6_k q8_0; do
    .bin/llmc compile /tmp/blockfix6k -o /tmp/bf-$w.plan --quantize $w --max-seq-len 128 2>&1 | tail -1 | cut -c1-30
    for tool in memcheck racecheck; do
      echo "== compute-sanitizer $tool, $w, FFN 6144"
      timeout 45 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/bf-$w.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
    done
  done
done
wait $files; tail -4 /tmp/w/files.log
pids=""
for v in 0 1 2; do
  for f in Q8_0 Q4_K_M; do LLMC_EXPERIMENT_DEFINES="${VARIANTS[$v]}" .bin/llmc compile /tmp/peers/$f.gguf -o /tmp/w/$f-$v.plan --weights as-stored --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"; done
  LLMC_EXPERIMENT_DEFINES="${VARIANTS[$v]}" .bin/llmc compile /tmp/peers/model -o /tmp/w/q6_k-$v.plan --quantize q6_k --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
done
wait $pids
unset LLMC_EXPERIMENT_DEFINES
for round in 1 2; do for p in Q8_0 Q4_K_M q6_k; do for v in 0 1 2; do
  echo "[$p variant $v] $(timeout 60 .bin/llmc bench /tmp/w/$p-$v.plan --prompt-len 32 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-90)"
done; done; done
