#!/usr/bin/env bash
# The CPU executor's prefill GEMM dotting four prompt rows with each weight row at once (dot4,
# src/exec/cpu.rs; same bits as before) against the binary before it (/tmp/llmc-old: main
# without the change, built the same way): time to first token of the real Qwen2.5-Coder-1.5B
# Q4_K_M, kept as stored and as bf16, for a 201-token prompt and the chat prompt of
# scripts/demo.sh, three alternating rounds. The 2-core CI-class machine, nothing else running:
#   bash bench/results/2026-12-02-cpu-prefill-dot4.sh > bench/results/2026-12-02-cpu-prefill-dot4.log 2>&1
set -euo pipefail
M=~/.cache/llmc-models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo +changes), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(nproc) cores"
target/release/llmc compile $M -o /tmp/coder-as.plan --weights as-stored --max-seq-len 2048 2>&1 | tail -1 | cut -c1-60
target/release/llmc compile $M -o /tmp/coder-bf16.plan --weights bf16 --max-seq-len 2048 2>&1 | tail -1 | cut -c1-60
ids=$(seq -s, 100 300)
for r in 1 2 3; do for b in new old; do for p in as bf16; do
  bin=target/release/llmc; [ $b = old ] && bin=/tmp/llmc-old
  echo "[$b, $p, round $r, 201 ids] $($bin run /tmp/coder-$p.plan --prompt-ids $ids --max-tokens 2 --ignore-eos 2>&1 | tail -1)"
  echo "[$b, $p, round $r, chat] $($bin run /tmp/coder-$p.plan --chat --prompt 'Write a Python function that checks whether a number is prime.' --max-tokens 8 2>&1 | tail -1)"
done; done; done
