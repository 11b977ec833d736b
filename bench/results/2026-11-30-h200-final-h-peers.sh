#!/usr/bin/env bash
# Second call of the final run (the same warm machine as 2026-11-30-h200-final-h.sh, which
# started llama.cpp's build and wrote /tmp/peers/bf16.gguf): llama-quantize to Q8_0 and Q4_K_M,
# then llama-bench tg128 (three repetitions) and llmc bench (prompt 32, 128 tokens; BF16 as bf16,
# the others as stored, graph decode) on the very same files, llmc and llmc_before.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
W=/tmp/peers; LCPP=$W/llama.cpp
exec > >(tee $OUT/final-h-peers.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for i in $(seq 1 60); do [ -e $W/built ] && break; sleep 5; done
echo "llama.cpp build exit $(cat $W/built 2>/dev/null || echo 'not finished')"
for q in Q8_0 Q4_K_M; do $LCPP/build/bin/llama-quantize $W/bf16.gguf $W/$q.gguf $q 2>&1 | tail -1; done
ls -la $W/*.gguf
for f in bf16 Q8_0 Q4_K_M; do
  weights=as-stored; [ $f = bf16 ] && weights=bf16
  .bin/llmc compile $W/$f.gguf -o $W/$f.plan --weights $weights --max-seq-len 4352 2>&1 | tail -1 | cut -c1-120
done
for round in 1 2; do
  for f in bf16 Q8_0 Q4_K_M; do
    for b in llmc llmc_before; do echo "[$b $f, round $round] $(timeout 60 .bin/$b bench $W/$f.plan --prompt-len 32 --gen 128 2>&1 | head -1 | cut -c1-90)"; done
  done
done
for f in bf16 Q8_0 Q4_K_M; do
  echo "== llama-bench $f"
  timeout 120 $LCPP/build/bin/llama-bench -m $W/$f.gguf -p 0 -n 128 -ngl 99 -fa 1 -r 3 -o md 2>&1 | grep -E "^\|"
done
