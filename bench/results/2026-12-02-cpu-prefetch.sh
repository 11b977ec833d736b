#!/usr/bin/env bash
# The CPU executor's block loops with software prefetch (src/quant/dot_avx2.rs, PREFETCH_AHEAD):
# the real Qwen2.5-Coder-1.5B Q4_K_M model kept as stored against its bf16 plan, decode after a
# 4-token prompt (48 tokens) and the chat prompt of scripts/demo.sh (64 tokens), three
# alternating rounds. Run on the 2-core CI-class machine, nothing else running:
#   bash bench/results/2026-12-02-cpu-prefetch.sh > bench/results/2026-12-02-cpu-prefetch.log 2>&1
set -euo pipefail
M=~/.cache/llmc-models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo +changes), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(nproc) cores"
target/release/llmc compile $M -o /tmp/coder-as.plan --weights as-stored --max-seq-len 2048 2>&1 | tail -1 | cut -c1-60
target/release/llmc compile $M -o /tmp/coder-bf16.plan --weights bf16 --max-seq-len 2048 2>&1 | tail -1 | cut -c1-60
for r in 1 2 3; do for p in as bf16; do
  echo "[$p, round $r] $(target/release/llmc run /tmp/coder-$p.plan --prompt 'def fibonacci(n):' --max-tokens 48 --ignore-eos 2>&1 | tail -1)"
  echo "[$p, round $r, chat] $(target/release/llmc run /tmp/coder-$p.plan --chat --prompt 'Write a Python function that checks whether a number is prime.' --max-tokens 64 2>&1 | tail -1)"
done; done
