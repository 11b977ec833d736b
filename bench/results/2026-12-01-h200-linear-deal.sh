#!/usr/bin/env bash
# -gemv-deal.sh dealt every bf16 GEMV's tasks to its blocks first and was slower (gate/up too);
# here only `linear` (o_proj, down) is dealt (LINEAR_DEALT at compile, LLMC_LINEAR_DEAL=1 for
# the grid of four blocks an SM), against the same binary's default plan, interleaved; the
# traced variant; memcheck of the variant on a fixture, whole report (-gemv-deal.log had one
# error with every GEMV dealt). .bin: llmc.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee $OUT/linear-deal.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
pids=""
.bin/llmc compile /tmp/w/m -o /tmp/w/d0.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
LLMC_EXPERIMENT_DEFINES="LINEAR_DEALT=1" .bin/llmc compile /tmp/w/m -o /tmp/w/d1.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
LLMC_EXPERIMENT_DEFINES="LINEAR_DEALT=1 TRACE_BLOCKS=1" .bin/llmc compile /tmp/w/m -o /tmp/w/d1t.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
wait $pids
b() { echo "[$1 $2] $(timeout 60 env $3 .bin/llmc bench /tmp/w/$1.plan --prompt-len $2 --gen 128 --reps 3 2>&1 | grep 'prompt ' | cut -c1-62)"; }
for round in 1 2; do b d0 32 X=1; b d1 32 LLMC_LINEAR_DEAL=1; done
b d0 1024 X=1; b d1 1024 LLMC_LINEAR_DEAL=1
LLMC_LINEAR_DEAL=1 .bin/llmc bench /tmp/w/d1t.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/d1-32.json 2>&1 | grep 'prompt '
python3 bench/graph_trace_summary.py $OUT/d1-32.json --launches 6; gzip -9 $OUT/d1-32.json
LLMC_EXPERIMENT_DEFINES="LINEAR_DEALT=1" .bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/fp.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
echo "== compute-sanitizer memcheck, graph, qwen2_tied, dealt linear"
LLMC_LINEAR_DEAL=1 LLMC_ATTN_MIN_CHUNK=8 timeout 40 compute-sanitizer --tool memcheck --error-exitcode 9 .bin/llmc run /tmp/fp.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | grep -v "^\s*$" | head -30; echo "exit ${PIPESTATUS[0]}"
