#!/usr/bin/env bash
# GridWait::load as __ldcg (ld.global.cg) instead of __ldg, against the binary of 5418e86
# (`llmc_base`, same kernels but that load), decode of the Qwen2.5-1.5B shape (random weights)
# bf16 / --quantize q4_k / q8_0 on the graph path, interleaved rounds; then two launch
# experiments read from the environment by gemv_shape (-launch-knobs.diff, not landed):
# LLMC_GEMV_BLOCKS_PER_SM=3 (bf16 GEMVs leave an SM room for the next kernel's block) and
# LLMC_Q_SM_WARPS=8 (`_q` GEMVs take half an SM's registers, so the next kernel's block can be
# resident and request its weights before its wait); then every GPU test and the sanitizers.
# .bin: llmc, llmc_base, cuda_vs_cpu, cuda_faults.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/ldcg.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
for b in llmc llmc_base; do
  .bin/$b compile /tmp/w/m -o /tmp/w/$b-bf16.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
  for q in q4_k q8_0; do .bin/$b compile /tmp/w/m -o /tmp/w/$b-$q.plan --quantize $q --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40; done
done
bench() { echo "[$1] $(timeout 60 env $2 .bin/llmc bench $3 --prompt-len $4 --gen 128 2>&1 | head -1 | cut -c1-80)"; }
for round in 1 2; do
  for w in bf16 q4_k q8_0; do
    bench "base $w 32 r$round" "X=1" /tmp/w/llmc_base-$w.plan 32
    bench "ldcg $w 32 r$round" "X=1" /tmp/w/llmc-$w.plan 32
  done
  bench "ldcg bf16 blocks/SM 3, 32 r$round" LLMC_GEMV_BLOCKS_PER_SM=3 /tmp/w/llmc-bf16.plan 32
  for q in q4_k q8_0; do bench "ldcg $q q-warps/SM 8, 32 r$round" LLMC_Q_SM_WARPS=8 /tmp/w/llmc-$q.plan 32; done
done
for w in bf16 q4_k q8_0; do bench "base $w 1024" X=1 /tmp/w/llmc_base-$w.plan 1024; bench "ldcg $w 1024" X=1 /tmp/w/llmc-$w.plan 1024; done
bench "ldcg bf16 blocks/SM 3, 1024" LLMC_GEMV_BLOCKS_PER_SM=3 /tmp/w/llmc-bf16.plan 1024
for q in q4_k q8_0; do bench "ldcg $q q-warps/SM 8, 1024" LLMC_Q_SM_WARPS=8 /tmp/w/llmc-$q.plan 1024; done
echo "== tests"
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |replays|FFN|panicked|result" | head -30
timeout 30 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
for d in graph persistent; do
  LLMC_ATTN_MIN_CHUNK=8 .bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/fp-$d.plan --max-seq-len 64 --decode $d 2>&1 | tail -1 | cut -c1-40
  for tool in memcheck racecheck; do
    echo "== compute-sanitizer $tool, $d, qwen2_tied (biases), 20-token prompt, splits of 8"
    LLMC_ATTN_MIN_CHUNK=8 timeout 40 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fp-$d.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
  done
done
