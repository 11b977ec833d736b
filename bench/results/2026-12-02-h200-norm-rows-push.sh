#!/usr/bin/env bash
# Three shortenings of a decode layer's chains (#13), each behind a define that is on by default,
# measured against themselves switched off in one call (each plan compiled by the same binary
# with LLMC_EXPERIMENT_DEFINES; all three off is the kernels of a7d4336):
#   GEMV_NORM_LATE  a folded input norm scales the dot products instead of x (no block reduction
#                   and second pass over x before them: qkv_rope, the fused MLP, the LM head);
#   MLP_ROW_TASKS   the fused MLP's gate/up tasks are single rows (nine a warp in a block of nine
#                   units, not five pairs for half its warps);
#   ATTN_PUSH_MERGE clustered attention pushes its parts into the merging blocks' shared memory
#                   (one cluster barrier after P.V instead of two and remote loads).
# First (while the random model is written) the GPU tests (unless TESTS is 0 or 2) and compute-sanitizer
# memcheck, racecheck and synccheck (unless TESTS=0) on a fixture's graph plan (qwen3_untied; min chunk 8 so that
# the clustered merge runs). Then random Qwen2.5-1.5B shape, bf16, 128 tokens after 32 and 1,024,
# interleaved rounds (killed at 90 s each). Variant pf: the new plan with attention asking L2
# for the next fused MLP's gate rows past each block's first round (LLMC_ATTN_PREFETCH_ROWS=40).
# .bin: llmc, cuda_vs_cpu, cuda_faults, COMMIT, built from a7d4336 with -norm-rows-push.patch applied
# (the patch's stage_norm_weight is the fixed one; -1.log ran the first form, see README).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee -a $OUT/norm-rows-push.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
( [ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1 ) &
model=$!
if [ "${TESTS:-1}" = 1 ]; then
  echo "== tests"
  timeout -s KILL 240 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |panicked|result" | head -30
  timeout -s KILL 40 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
fi
if [ "${TESTS:-1}" != 0 ]; then
  .bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/fg.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
  for tool in memcheck racecheck synccheck; do
    echo "== compute-sanitizer $tool, graph, qwen3_untied, 20-token prompt, min chunk 8"
    LLMC_ATTN_MIN_CHUNK=8 timeout -s KILL 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fg.plan --prompt-ids $(seq -s, 1 20) --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
  done
fi
wait $model
declare -A defs=([new]="" [off]="GEMV_NORM_LATE=0 MLP_ROW_TASKS=0 ATTN_PUSH_MERGE=0" [norm]="MLP_ROW_TASKS=0 ATTN_PUSH_MERGE=0"
  [rows]="GEMV_NORM_LATE=0 ATTN_PUSH_MERGE=0" [push]="GEMV_NORM_LATE=0 MLP_ROW_TASKS=0")
variants="${VARIANTS:-new off norm rows push pf}"
for v in $variants; do
  [ $v = pf ] && continue
  LLMC_EXPERIMENT_DEFINES="${defs[$v]}" .bin/llmc compile /tmp/w/m -o /tmp/w/$v.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
done
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
for r in $(seq 1 ${ROUNDS:-2}); do for v in $variants; do
  plan=$v; rows=0; [ $v = pf ] && plan=new rows=40
  echo "[$v, round $r] $(LLMC_ATTN_PREFETCH_ROWS=$rows timeout -s KILL 90 .bin/llmc bench /tmp/w/$plan.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-60 | tr '\n' ' ')"
done; done
