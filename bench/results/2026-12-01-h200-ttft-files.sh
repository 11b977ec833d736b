#!/usr/bin/env bash
# After the fix of the per-launch define() scan: (1) the GPU tests that cover prefill (block
# formats, fixtures' prefill, 4,096-token prefill); (2) llama.cpp's GGUF files remade as in
# -peers-bench (bench/peer_llamacpp.sh files: converter, CPU-only llama-quantize), compiled bf16 /
# as-stored as there (--max-seq-len 8320), llmc bench at 32 and 1,024 tokens (TTFT and decode),
# two rounds. llama.cpp itself is not rebuilt: its figures are -peers-bench.log's (09:48 UTC).
# .bin: llmc, cuda_vs_cpu, cuda_faults (stripped), llama.cpp-src.tar.xz, COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/ttft-files.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
(bash bench/peer_llamacpp.sh .bin files > /tmp/w/files.log 2>&1; echo "files exit $?" >> /tmp/w/files.log) &
files=$!
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 block_format prefill 2>&1 | grep -E "^test |FFN|prefill|panicked|result" | head -30
wait $files; tail -2 /tmp/w/files.log
pids=""
for f in bf16 Q8_0 Q4_K_M; do
  weights=as-stored; [ $f = bf16 ] && weights=bf16
  .bin/llmc compile /tmp/peers/$f.gguf -o /tmp/w/$f.plan --weights $weights --max-seq-len 8320 2>&1 | tail -1 | cut -c1-80 & pids="$pids $!"
done
wait $pids
for round in 1 2; do for f in bf16 Q8_0 Q4_K_M; do
  echo "[$f round $round] $(timeout 90 .bin/llmc bench /tmp/w/$f.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-150 | tr '\n' '|')"
done; done
