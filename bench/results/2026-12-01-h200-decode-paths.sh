#!/usr/bin/env bash
# Both decode paths on the four shapes, random bf16 weights, at commit 7b9a348 (.bin built from it),
# 2026-12-01 23:41 UTC, H200 (device call of the run that wrote -decode-paths.{md,json,log} and
# -decode-paths-7b.{md,json}).
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
echo "commit $(cat .bin/COMMIT), $(date -u)"
timeout 300 python3 bench/decode_paths.py --llmc .bin/llmc --out $OUT --shapes qwen2.5-1.5b,qwen3-1.7b,llama-3.2-3b --contexts 1024,8192 2>&1 | grep -v Writing | tee $OUT/decode-paths.log
mkdir -p $OUT/7b
timeout 200 python3 bench/decode_paths.py --llmc .bin/llmc --out $OUT/7b --shapes qwen2-7b 2>&1 | grep -v Writing | tee $OUT/decode-paths-7b.log
