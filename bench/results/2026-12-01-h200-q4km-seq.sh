#!/usr/bin/env bash
# Does the plan's max_seq_len move graph decode at short context? Attention's grid is
# (12 query heads, splits) with splits >= max_seq_len / 256 (ATTN_CHUNK): 22 at llmc's default
# of 4,096, 33 at the 8,320 the peer runs used (merge-files.log: attention 7.16 us a launch in a
# Q4_K_M step at 8,320 against 5.85 in a bf16 step at 4,352). llama.cpp's Q4_K_M and Q8_0 files
# (bench/peer_llamacpp.sh files), each at the default and at 8,320, 128 tokens after 32, two
# interleaved rounds. .bin: llmc, llama.cpp-src.tar.xz.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/q4km-seq.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
TRANSFORMERS=0 bash bench/peer_llamacpp.sh .bin files > /tmp/w/files.log 2>&1; tail -3 /tmp/w/files.log
pids=""
for f in Q4_K_M Q8_0; do
  .bin/llmc compile /tmp/peers/$f.gguf -o /tmp/w/$f-default.plan --weights as-stored 2>&1 | tail -1 | cut -c1-150 & pids="$pids $!"
  .bin/llmc compile /tmp/peers/$f.gguf -o /tmp/w/$f-8320.plan --weights as-stored --max-seq-len 8320 2>&1 | tail -1 | cut -c1-40 & pids="$pids $!"
done
wait $pids
for round in 1 2; do for f in Q4_K_M Q8_0; do for s in default 8320; do
  echo "[$f $s] $(timeout 40 .bin/llmc bench /tmp/w/$f-$s.plan --prompt-len 32 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-80)"
done; done; done
