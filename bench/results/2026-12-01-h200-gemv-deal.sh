#!/usr/bin/env bash
# bf16 GEMVs with their tasks dealt to the blocks first (warp w of block b starts at task
# w * blocks + b) and a block per task up to four an SM, so that a grid the SMs could hold in
# fewer blocks (down and o_proj: 384 blocks of 4 warps, q/k/v: 256) no longer lands four blocks
# to an SM on the SMs that free first (-graph-trace.log: down's 384 blocks on 97 of 132 SMs).
# Against llmc_base (32979fc, the same kernels otherwise), interleaved; the traced plan's
# summary; every GPU test; memcheck and racecheck of the graph path.
# .bin: llmc, llmc_base, cuda_vs_cpu, cuda_faults.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/gemv-deal.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
pids=""
for b in llmc llmc_base; do .bin/$b compile /tmp/w/m -o /tmp/w/$b.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"; done
LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" .bin/llmc compile /tmp/w/m -o /tmp/w/traced.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
wait $pids
bench() { echo "[$1] $(timeout 60 .bin/$1 bench /tmp/w/$1.plan --prompt-len $2 --gen 128 --reps 3 2>&1 | grep 'prompt ' | cut -c1-62)"; }
for round in 1 2; do for b in llmc_base llmc; do bench $b 32; done; done
for b in llmc_base llmc; do bench $b 1024; done
.bin/llmc bench /tmp/w/traced.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/deal-32.json 2>&1 | grep 'prompt '
python3 bench/graph_trace_summary.py $OUT/deal-32.json --launches 12; gzip -9 $OUT/deal-32.json
echo "== tests"
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |replays|FFN|panicked|result" | head -30
timeout 30 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
LLMC_ATTN_MIN_CHUNK=8 .bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/fp.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
for tool in memcheck racecheck; do
  echo "== compute-sanitizer $tool, graph, qwen2_tied (biases), 20-token prompt, splits of 8"
  LLMC_ATTN_MIN_CHUNK=8 timeout 40 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fp.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
