#!/usr/bin/env bash
# The command run at 09:47 UTC on the machine -dequant-prefill.sh had left warm (llama.cpp's CUDA
# build started there, the model converted to /tmp/peers/bf16.gguf): llama-bench and llmc bench
# on the same GGUF files (bench/peer_llamacpp.sh bench, prompts of 32 and 1,024), then graph
# attention clusters of 1 and 4 on the bf16 and Q4_K_M plans after 32, 1,024 and 4,096 tokens.
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}; exec > >(tee $OUT/peers-bench.log) 2>&1; echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; for i in $(seq 1 40); do [ -e /tmp/peers/built ] && break; sleep 5; done; PROMPTS=32,1024 TRANSFORMERS=0 bash bench/peer_llamacpp.sh .bin bench; for c in 1 4; do for f in bf16 Q4_K_M; do echo "[$f cluster $c] $(LLMC_ATTN_CLUSTER=$c timeout 90 .bin/llmc bench /tmp/peers/$f.plan --prompt-len 32,1024,4096 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-150 | tr '\n' '|')"; done; done
