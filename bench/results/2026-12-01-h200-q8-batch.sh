#!/usr/bin/env bash
# Q8_0 GEMV warps with six chunks in flight (Q8_BATCH, the default now) or eight, each with the
# host's warps a tile as committed (256 elements of a row a warp) or halved (512: llmc_exp, an
# experiment-only LLMC_Q_WARP_ELEMENTS, not committed); q4_k beside them. Qwen2.5-1.5B shape,
# random weights, graph decode, 128 tokens after 32 (two interleaved rounds) and 1,024; then
# every GPU test and compute-sanitizer of Q8_0 and Q4_K plans with the committed binary.
# .bin: llmc, llmc_exp, cuda_vs_cpu, cuda_faults (stripped).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/q8-batch.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
python3 -c "import json; c = json.load(open('tests/fixtures/qwen2_tied/config.json')); c.update(hidden_size=256, intermediate_size=6144, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False); json.dump(c, open('/tmp/blockfix6k.json', 'w'))"
python3 bench/make_synthetic_model.py /tmp/blockfix6k.json /tmp/w/blockfix6k 2>&1 | tail -1
pids=""
for v in "q8_0 6" "q8_0 8" "q4_k 6"; do
  set -- $v
  LLMC_EXPERIMENT_DEFINES="Q8_BATCH=$2" .bin/llmc compile /tmp/w/m -o /tmp/w/$1-$2.plan --quantize $1 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
done
wait $pids
bench() { echo "[$1 Q8_BATCH=$2 $3 elements ${4:-256}] $(LLMC_Q_WARP_ELEMENTS=${4:-256} timeout 60 .bin/$3 bench /tmp/w/$1-$2.plan --prompt-len ${5:-32} --gen 128 --reps 2 2>&1 | grep -E "prompt |rror" | head -1 | cut -c1-80)"; }
for round in 1 2; do
  bench q8_0 6 llmc; bench q8_0 6 llmc_exp 512; bench q8_0 8 llmc_exp; bench q8_0 8 llmc_exp 512; bench q4_k 6 llmc
done
bench q8_0 6 llmc 256 1024; bench q4_k 6 llmc 256 1024
echo "== tests"
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |replays|FFN|worst|panicked|result" | head -40
timeout 30 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
for w in q8_0 q4_k; do
  .bin/llmc compile /tmp/w/blockfix6k -o /tmp/bf-$w.plan --quantize $w --max-seq-len 128 2>&1 | tail -1 | cut -c1-30
  for tool in memcheck racecheck; do
    echo "== compute-sanitizer $tool, $w, FFN 6144"
    timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/bf-$w.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
  done
done
