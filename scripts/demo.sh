#!/usr/bin/env bash
# The main job on a fresh machine: build llmc, fetch the real model, compile it for the local GPU
# (or the CPU when there is none) and answer a prompt, streaming.
#
# Usage: scripts/demo.sh ["prompt"]
set -euo pipefail
cd "$(dirname "$0")/.."
PROMPT="${1:-Write a Python function that checks whether a number is prime.}"
command -v cargo >/dev/null || { echo "cargo not found: install Rust from rustup.rs first" >&2; exit 1; }
cargo build --release
GGUF="$(scripts/fetch-model.sh | tail -n 1)"
TARGET=cpu
BACKEND=cpu
if command -v nvidia-smi >/dev/null && cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1)" && [[ -n "$cap" ]]; then
  TARGET="sm_${cap/./}"
  BACKEND=cuda
fi
PLAN="${HOME}/.cache/llmc-models/coder-${TARGET}.plan"
if [[ ! -f "$PLAN" || "$PLAN" -ot target/release/llmc ]]; then
  target/release/llmc compile "$GGUF" -o "$PLAN" --target "$TARGET" --max-seq-len 4096
fi
target/release/llmc run "$PLAN" --backend "$BACKEND" --chat --prompt "$PROMPT" --max-tokens 256
