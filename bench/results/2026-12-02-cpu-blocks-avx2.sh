#!/usr/bin/env bash
# CPU executor, real Qwen2.5-Coder-1.5B Q4_K_M (scripts/fetch-model.sh), on the 2-core CI machine
# (2026-12-02: AMD EPYC VM): the block formats read by AVX2 intrinsics (src/quant/dot_avx2.rs,
# NEW = target/release/llmc) against the binary before them (OLD = ab9e390's), alternating,
# 48 tokens after "def fibonacci(n):". Log: 2026-12-02-cpu-blocks-avx2.log.
set -euo pipefail
OLD=${OLD:?binary before}; NEW=${NEW:-target/release/llmc}
M=$(bash scripts/fetch-model.sh | tail -1); D=$(mktemp -d)
"$NEW" compile "$M" -o "$D/stored.plan" --weights as-stored --max-seq-len 512 | tail -1
"$NEW" compile "$M" -o "$D/bf16.plan" --weights bf16 --max-seq-len 512 | tail -1
for i in 1 2 3 4; do
  for b in OLD NEW; do
    "${!b}" run "$D/stored.plan" --prompt "def fibonacci(n):" --max-tokens 48 --ignore-eos 2>&1 >/dev/null | tail -1 | sed "s/^/$b stored: /"
  done
  "$NEW" run "$D/bf16.plan" --prompt "def fibonacci(n):" --max-tokens 48 --ignore-eos 2>&1 >/dev/null | tail -1 | sed "s/^/NEW bf16: /"
done
rm -rf "$D"
