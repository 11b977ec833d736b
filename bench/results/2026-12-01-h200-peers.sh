#!/usr/bin/env bash
# llama.cpp and llmc (d58a9c4: GridWait::load as __ldca) on the same GGUF files, two calls on one
# warm machine: `build` converts the random Qwen2.5-1.5B-shape model and waits for llama.cpp's
# build; `bench` quantizes to Q8_0 and Q4_K_M and runs llama-bench and llmc bench, prompts of 32
# and 1,024 tokens, 128 generated. .bin: llmc, llama.cpp-src.tar.xz.
set -uo pipefail
case $1 in
build)
  bash bench/peer_llamacpp.sh .bin build
  for i in $(seq 1 96); do [ -e /tmp/peers/built ] && break; sleep 5; done
  echo "llama.cpp build exit $(cat /tmp/peers/built 2>/dev/null || echo 'not finished')" | tee -a $OUT/peers.log ;;
bench) PROMPTS=32,1024 TRANSFORMERS=0 bash bench/peer_llamacpp.sh .bin bench ;;
esac
