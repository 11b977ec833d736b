#!/usr/bin/env bash
# (1) The shortenings of -norm-rows-push.patch measured one at a time (plans compiled with
# SPIN_LIMIT so a counter spin that never ends traps instead of hanging), and attention's L2
# prefetch of the next MLP's gate rows (pf: the off plan with LLMC_ATTN_PREFETCH_ROWS=40);
# (2) Nsight Compute stall reasons of one decode layer's bf16 kernels (qkv_rope, attention,
# linear = o_proj, mlp) and the LM head with warm caches (--cache-control none), the kernels
# serialized: is instruction fetch (no_instruction) the largest stall, as it was for the `_q`
# GEMVs (2026-11-30)? Application replay (each kernel after its real predecessors) and
# kernel replay.
# .bin: llmc built from e3d8de0 with -norm-rows-push.patch applied.
# Runs 1 (17:19 UTC, default VARIANTS) and 2 (17:31, VARIANTS="off rows push pf" ROUNDS=2;
# -1.log, -2.log) stopped at their bare `wait` (it waited for the >(tee) log too), before any bench.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee -a $OUT/variants-ncu.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT), variants ${VARIANTS:-default}"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
declare -A defs=([new]="" [off]="GEMV_NORM_LATE=0 MLP_ROW_TASKS=0 ATTN_PUSH_MERGE=0" [norm]="MLP_ROW_TASKS=0 ATTN_PUSH_MERGE=0"
  [rows]="GEMV_NORM_LATE=0 ATTN_PUSH_MERGE=0" [push]="GEMV_NORM_LATE=0 MLP_ROW_TASKS=0")
variants="${VARIANTS:-norm off rows push pf new}"
for v in $variants; do
  [ $v = pf ] && continue
  LLMC_EXPERIMENT_DEFINES="${defs[$v]} SPIN_LIMIT=4194304" .bin/llmc compile /tmp/w/m -o /tmp/w/$v.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
done
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
for r in $(seq 1 ${ROUNDS:-1}); do for v in $variants; do
  plan=$v; rows=0; [ $v = pf ] && plan=off rows=40
  echo "[$v, round $r] $(LLMC_ATTN_PREFETCH_ROWS=$rows timeout -s KILL 60 .bin/llmc bench /tmp/w/$plan.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-80 | tr '\n' ' ')"
done; done
[ "${NCU:-1}" = 1 ] || exit 0
S=smsp__average_warps_issue_stalled
M=gpu__time_duration.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,${S}_long_scoreboard_per_issue_active.ratio,${S}_short_scoreboard_per_issue_active.ratio,${S}_no_instruction_per_issue_active.ratio,${S}_wait_per_issue_active.ratio,${S}_barrier_per_issue_active.ratio,${S}_membar_per_issue_active.ratio,${S}_not_selected_per_issue_active.ratio,${S}_mio_throttle_per_issue_active.ratio,${S}_lg_throttle_per_issue_active.ratio,${S}_sleeping_per_issue_active.ratio,${S}_branch_resolving_per_issue_active.ratio
for mode in application kernel; do
  echo "== ncu, $mode replay, cache-control none, off plan, decode layer kernels"
  timeout -s KILL 150 ncu --replay-mode $mode --cache-control none --clock-control none -k "regex:^(linear|mlp|qkv_rope|attention|lm_head)$" --launch-skip 60 --launch-count 9 --metrics $M --csv .bin/llmc run /tmp/w/off.plan --prompt-ids 1,2,3,4,5,6,7,8 --max-tokens 3 --ignore-eos 2>/dev/null | grep -v "^==" > $OUT/ncu_$mode.csv
  python3 bench/ncu_stalls.py $OUT/ncu_$mode.csv
done
