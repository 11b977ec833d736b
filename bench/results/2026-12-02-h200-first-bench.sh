#!/usr/bin/env bash
# The first `llmc bench` of a call seemed to hang in four calls of 2026-12-01/02 (the last two: a
# plan of e3d8de0 + -norm-rows-push.patch with every shortening off and SPIN_LIMIT on, so not a
# counter spin, and `timeout -s KILL` could not end it). Here main's binary benches main's kernels
# (SPIN_LIMIT on) first under a watchdog that, if it is still running after 150 s, prints the
# process's threads (state, kernel stack), the GPU's load and what cuda-gdb sees, and stops.
# Run 1 (17:42 UTC, -first-bench.log) never reached the bench: its bare `wait` waited for the
# `>(tee)` log too, which is what every "hang" was (README, "Those hangs were the scripts");
# `wait $(jobs -p)` since.
# If it does not hang: the shortenings one at a time against off (llmc_exp: e3d8de0 with
# -norm-rows-push.patch; pf: off with LLMC_ATTN_PREFETCH_ROWS=40), then Nsight Compute stall
# reasons of a decode layer's kernels on main's plan (application replay, warm caches).
# .bin: llmc (main), llmc_exp (main with -norm-rows-push.patch applied: `git apply`, build, copy,
# `git checkout kernels src`), COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee -a $OUT/first-bench.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw --format=csv,noheader
[ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
c() { LLMC_EXPERIMENT_DEFINES="$2" $1 compile /tmp/w/m -o /tmp/w/$3.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40; }
c .bin/llmc "SPIN_LIMIT=4194304" spin & c .bin/llmc "" main &
c .bin/llmc_exp "GEMV_NORM_LATE=0 MLP_ROW_TASKS=0 ATTN_PUSH_MERGE=0" off & c .bin/llmc_exp "GEMV_NORM_LATE=0 ATTN_PUSH_MERGE=0" rows &
c .bin/llmc_exp "GEMV_NORM_LATE=0 MLP_ROW_TASKS=0" push & c .bin/llmc_exp "MLP_ROW_TASKS=0 ATTN_PUSH_MERGE=0" norm &
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
echo "== first bench, main, SPIN_LIMIT ($(date -u +%T))"
.bin/llmc bench /tmp/w/spin.plan --prompt-len 32,1024 --gen 128 --reps 2 > /tmp/b1.txt 2>&1 &
pid=$!
for i in $(seq 1 30); do sleep 5; kill -0 $pid 2>/dev/null || break; done
if kill -0 $pid 2>/dev/null; then
  echo "HUNG after 150 s ($(date -u +%T)); its output so far:"; cat /tmp/b1.txt
  ps -o pid,stat,wchan:32,etime,args -p $pid
  for t in /proc/$pid/task/*; do echo "thread ${t##*/}: $(cut -d' ' -f3 $t/stat) $(cat $t/wchan 2>/dev/null)"; head -8 $t/stack 2>/dev/null; done
  nvidia-smi --query-gpu=utilization.gpu,clocks.sm,power.draw,memory.used --format=csv
  if command -v cuda-gdb >/dev/null; then
    timeout -s KILL 90 cuda-gdb -p $pid -batch -ex "info cuda kernels" -ex "info cuda blocks" -ex "info cuda warps" -ex "x/4i \$pc" -ex "thread apply all bt 8" 2>&1 | grep -v "^\[New\|^$" | head -120
  fi
  exit 0
fi
grep -E "prompt |rror" /tmp/b1.txt | cut -c1-80
for v in main off norm rows push pf; do
  bin=.bin/llmc_exp plan=$v rows=0; [ $v = main ] && bin=.bin/llmc; [ $v = pf ] && plan=off rows=40
  echo "[$v] $(LLMC_ATTN_PREFETCH_ROWS=$rows timeout -s KILL 60 $bin bench /tmp/w/$plan.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-80 | tr '\n' ' ')"
done
S=smsp__average_warps_issue_stalled
M=gpu__time_duration.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,${S}_long_scoreboard_per_issue_active.ratio,${S}_short_scoreboard_per_issue_active.ratio,${S}_no_instruction_per_issue_active.ratio,${S}_wait_per_issue_active.ratio,${S}_barrier_per_issue_active.ratio,${S}_membar_per_issue_active.ratio,${S}_not_selected_per_issue_active.ratio,${S}_mio_throttle_per_issue_active.ratio,${S}_lg_throttle_per_issue_active.ratio,${S}_sleeping_per_issue_active.ratio,${S}_branch_resolving_per_issue_active.ratio
echo "== ncu, application replay, cache-control none, main's plan, decode layer kernels"
timeout -s KILL 150 ncu --replay-mode application --cache-control none --clock-control none -k "regex:^(linear|mlp|qkv_rope|attention|lm_head)$" --launch-skip 60 --launch-count 9 --metrics $M --csv .bin/llmc run /tmp/w/main.plan --prompt-ids 1,2,3,4,5,6,7,8 --max-tokens 3 --ignore-eos 2>/dev/null | grep -v "^==" > $OUT/ncu.csv
python3 bench/ncu_stalls.py $OUT/ncu.csv
