#!/usr/bin/env bash
# #13: attention_proj made opt-in (LLMC_FUSE_ATTN_PROJ=1) after -attention-proj.log: the fixture
# test in its new cases (fused with one slice and with several in clusters of 4 on qwen3_untied,
# every bias-free fixture in clusters of 2), and one round of the random Qwen2.5-1.5B shape after
# 32, 128 and 224 tokens (one slice to four, all merged in the cluster), fused against not.
# .bin: llmc, cuda_vs_cpu, cuda_faults, COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/attention-proj-optin.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
( python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1; .bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 512 2>&1 | tail -1 | cut -c1-40 ) &
LLMC_EXPERIMENT_DEFINES="SPIN_LIMIT=20000000" timeout -s KILL 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 cuda_matches_cpu_on_every_fixture 2>&1 | grep -E "^test |panicked|result|llmc spin|fused true" | head -40
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
for v in "fused LLMC_FUSE_ATTN_PROJ=1" "apart LLMC_FUSE_ATTN_PROJ=0"; do
  set -- $v
  echo "[$1] $(env $2 timeout -s KILL 60 .bin/llmc bench /tmp/w/p.plan --prompt-len 32,128,224 --gen 32 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-48 | tr '\n' ' ')"
done
echo "done $(date -u +%T)"
