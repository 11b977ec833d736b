#!/usr/bin/env bash
# Is a677c8f's q8_0 decode mismatch (-final-h.log) deterministic? Its block-format test twice,
# then HEAD's once, nothing else running. .bin: cuda_vs_cpu (HEAD), cuda_vs_cpu_a677 (a677c8f).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
[ -e /tmp/wt-a677 ] || ln -s "$PWD" /tmp/wt-a677  # the a677c8f test binary was built in that worktree (its fixtures path)
exec > >(tee $OUT/a677c8f-q8_0.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for b in cuda_vs_cpu_a677 cuda_vs_cpu_a677 cuda_vs_cpu; do
  echo "== $b"
  timeout 60 .bin/$b --ignored --nocapture --test-threads 1 block_format_plans 2>&1 | grep -E "FFN|panicked|result" | head -4
done
