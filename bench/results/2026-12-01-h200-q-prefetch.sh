#!/usr/bin/env bash
# The `_q` GEMVs hold few weight bytes in flight (their registers: q4_k ~1.5 KB a warp against
# bf16's 8 KB), so a block's warp 0 asks L2 for the block's next Q_PREFETCH rounds of its tile's
# rows (cp.async.bulk.prefetch.L2, evict-first; nothing returns to registers), set at compile
# time through LLMC_EXPERIMENT_DEFINES. Qwen2.5-1.5B shape, random weights, --quantize q4_k /
# q8_0, graph decode, 128 tokens after 32 (two interleaved rounds) and 1,024; then the
# block-format GPU test and compute-sanitizer with prefetch on. .bin: llmc, cuda_vs_cpu,
# cuda_faults, blockfix6k (bench/make_synthetic_model.py: tests/common's block fixture, FFN 6,144).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/q-prefetch.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
PS="${PS:-0 2 4}"; QS="${QS:-q4_k q8_0}"
pids=""  # (a bare `wait` would wait for the tee above too)
for q in $QS; do
  for p in $PS; do LLMC_EXPERIMENT_DEFINES="Q_PREFETCH=$p" .bin/llmc compile /tmp/w/m -o /tmp/w/$q-p$p.plan --quantize $q --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"; done
done
wait $pids
bench() { echo "[$1] $(timeout 60 .bin/llmc bench $2 --prompt-len $3 --gen 128 --reps 2 2>&1 | head -1 | cut -c1-70)"; }
for round in 1 2; do for q in $QS; do for p in $PS; do bench "$q prefetch $p, 32, r$round" /tmp/w/$q-p$p.plan 32; done; done; done
for q in $QS; do for p in $PS; do bench "$q prefetch $p, 1024" /tmp/w/$q-p$p.plan 1024; done; done
echo "== block formats vs CPU, Q_PREFETCH=2"
LLMC_EXPERIMENT_DEFINES="Q_PREFETCH=2" timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 block_format 2>&1 | grep -E "^test |worst|FFN|panicked|result|^q[0-9]" | head -30
for w in q8_0 q4_k; do
  LLMC_EXPERIMENT_DEFINES="Q_PREFETCH=2" .bin/llmc compile .bin/blockfix6k -o /tmp/bf-$w.plan --quantize $w --max-seq-len 128 2>&1 | tail -1 | cut -c1-30
  echo "== compute-sanitizer memcheck, $w, FFN 6144, Q_PREFETCH=2"
  timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 .bin/llmc run /tmp/bf-$w.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
