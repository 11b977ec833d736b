#!/usr/bin/env bash
# attn-cluster.sh again after clusters were limited to a step whose active slices fit one
# cluster (more merge through L2 as without clusters): -attn-cluster.log had clusters of 8 at
# 1.468-1.474 ms/token after 1,024 tokens against 1.323-1.324 without. The session's last
# ~140 s of device time: the fixture test, then graph decode with clusters 1 / 4 / 8 after 32
# and 1,024 tokens. .bin: llmc, cuda_vs_cpu (stripped).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work /tmp/w && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/attn-cluster1.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"
(python3 bench/make_random_qwen.py /tmp/w/m > /tmp/w/m.log 2>&1; .bin/llmc compile /tmp/w/m -o /tmp/w/g.plan --weights bf16 --max-seq-len 1152 >> /tmp/w/m.log 2>&1) &
model=$!
timeout 100 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 cuda_matches_cpu_on_every_fixture 2>&1 | grep -E "^test |cluster [48]|panicked|result" | head -30
wait $model; tail -1 /tmp/w/m.log | cut -c1-60
for prompt in 32 1024; do for c in 1 4 8; do
  echo "[cluster $c, prompt $prompt] $(LLMC_ATTN_CLUSTER=$c timeout 30 .bin/llmc bench /tmp/w/g.plan --prompt-len $prompt --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | head -1 | cut -c1-70)"
done; done
