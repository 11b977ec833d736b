#!/usr/bin/env bash
# Not kept (measured slower, reverted; the kernels of 1e5ca85 + c1ee617): q4_k 1.171-1.176 -> 1.420-1.423 ms/token,
# q8_0 1.333 -> 1.430-1.434, q6_k 1.422 -> 1.532-1.536 after 32 tokens; every test and sanitizer clean.
# `_q` GEMV warps stage their weights in shared memory by cp.async, one batch ahead of the
# batch they multiply (across tiles; the first before the wait), against llmc_lanes (a1f0db1:
# weights loaded into registers a batch at a time, the next batch requested only after the
# current one was multiplied). Qwen2.5-1.5B shape, random weights, --quantize q4_k / q8_0 /
# q6_k, graph decode, 128 tokens after 32 (two rounds) and 1,024; bf16 once; a traced q4_k
# step; every GPU test; memcheck of every block format and racecheck of two.
# .bin: llmc, llmc_lanes, cuda_vs_cpu, cuda_faults (stripped); the block fixture with FFN 6,144
# (tests/common's, random bf16 weights) made here.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/q-staged.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
python3 -c "import json; c = json.load(open('tests/fixtures/qwen2_tied/config.json')); c.update(hidden_size=256, intermediate_size=6144, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False); json.dump(c, open('/tmp/blockfix6k.json', 'w'))"
python3 bench/make_synthetic_model.py /tmp/blockfix6k.json /tmp/w/blockfix6k 2>&1 | tail -1
.bin/llmc compile /tmp/w/blockfix6k -o /tmp/bf-first.plan --quantize q4_k --max-seq-len 128 2>&1 | tail -1 | cut -c1-30
.bin/llmc run /tmp/bf-first.plan --prompt-ids 1,2,3 --max-tokens 4 --ignore-eos > /tmp/first.txt 2>&1 || { echo "first run failed:"; tail -5 /tmp/first.txt; exit 1; }
QS="q4_k q8_0 q6_k"; BS="llmc_lanes llmc"
weights() { [ $1 = bf16 ] && echo "--weights bf16" || echo "--quantize $1"; }
pids=""  # (a bare `wait` would wait for the tee above too)
for q in $QS; do for b in $BS; do .bin/$b compile /tmp/w/m -o /tmp/w/$b-$q.plan $(weights $q) --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"; done; done
LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" .bin/llmc compile /tmp/w/m -o /tmp/w/traced.plan --quantize q4_k --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
.bin/llmc compile /tmp/w/m -o /tmp/w/llmc-bf16.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
wait $pids
bench() { echo "[$1 $2 $3] $(timeout 60 .bin/$1 bench /tmp/w/$1-$2.plan --prompt-len $3 --gen 128 --reps 2 2>&1 | grep -E "prompt |rror" | head -1 | cut -c1-110)"; }
for round in 1 2; do for q in $QS; do for b in $BS; do bench $b $q 32; done; done; done
for q in $QS; do for b in $BS; do bench $b $q 1024; done; done
bench llmc bf16 32
.bin/llmc bench /tmp/w/traced.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/q4k-32.json 2>&1 | grep 'prompt '
python3 bench/graph_trace_summary.py $OUT/q4k-32.json --launches 12; gzip -9 $OUT/q4k-32.json
echo "== tests"
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |replays|FFN|worst|panicked|result" | head -40
timeout 30 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
for w in q8_0 q4_k q6_k q5_k q4_0; do
  .bin/llmc compile /tmp/w/blockfix6k -o /tmp/bf-$w.plan --quantize $w --max-seq-len 128 2>&1 | tail -1 | cut -c1-30
  tools=memcheck; case $w in q8_0|q4_k) tools="memcheck racecheck";; esac
  for tool in $tools; do
    echo "== compute-sanitizer $tool, $w, FFN 6144"
    timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/bf-$w.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
  done
done
