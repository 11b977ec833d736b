#!/usr/bin/env bash
# #13: decode attention's splits merged through distributed shared memory in thread block
# clusters (graph path, LLMC_ATTN_CLUSTER=2|4|8; default 1, no clusters), a smoke test in the
# session's last 240 s of device time: the fixture test (graph path with clusters of 4 and 8 at
# min chunk 8, beside the usual cases), then random Qwen2.5-1.5B shape, bf16, graph decode,
# 128 tokens after 32 and 1,024 with clusters 1 / 8 / 4. .bin: llmc, cuda_vs_cpu (stripped).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/attn-cluster.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"
(python3 bench/make_random_qwen.py /tmp/w/m > /tmp/w/m.log 2>&1; .bin/llmc compile /tmp/w/m -o /tmp/w/g.plan --weights bf16 --max-seq-len 1152 >> /tmp/w/m.log 2>&1) &
model=$!
timeout 120 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 cuda_matches_cpu_on_every_fixture 2>&1 | grep -E "^test |Graph|panicked|result" | head -30
wait $model; tail -1 /tmp/w/m.log | cut -c1-60
for prompt in 32 1024; do for c in 1 8 4 1 8; do
  echo "[cluster $c, prompt $prompt] $(LLMC_ATTN_CLUSTER=$c timeout 30 .bin/llmc bench /tmp/w/g.plan --prompt-len $prompt --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-70)"
done; done
