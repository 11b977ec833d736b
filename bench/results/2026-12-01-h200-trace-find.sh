#!/usr/bin/env bash
# -linear-deal.log's memcheck error was the block trace's: CudaBackend::new asked the driver for
# `block_trace` on every graph plan (cuModuleGetGlobal, CUDA_ERROR_NOT_FOUND on an untraced
# module), an API error compute-sanitizer counts. BlockTrace::find now searches the PTX first.
# memcheck of an untraced and a traced fixture graph plan, and the traced plan's trace. .bin: llmc.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee $OUT/trace-find.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
.bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/fp.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" .bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/ft.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
for p in fp ft; do
  echo "== compute-sanitizer memcheck, graph, qwen2_tied, $p"
  LLMC_ATTN_MIN_CHUNK=8 timeout 40 compute-sanitizer --tool memcheck --error-exitcode 9 .bin/llmc run /tmp/$p.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 .bin/llmc bench /tmp/ft.plan --prompt-len 20 --gen 8 --reps 1 --trace /tmp/ft.json 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
python3 bench/graph_trace_summary.py /tmp/ft.json --launches 4 > /tmp/s.txt; head -14 /tmp/s.txt
.bin/llmc bench /tmp/fp.plan --prompt-len 20 --gen 8 --reps 1 --trace /tmp/x.json 2>&1 | tail -1; echo "exit $? (untraced)"
