#!/usr/bin/env bash
# The landing check of 2026-12-03 (#13): every GPU test (cuda_vs_cpu, cuda_faults),
# bench/verify_full_scale.py (Qwen2.5-1.5B after 32 and 1,024 prompt tokens, Qwen3-1.7B after 32)
# and both decode paths on the three published shapes (bench/decode_paths.py: random bf16 weights,
# prompt 32, 128 tokens, and after 1,024 and 8,192 tokens; % of the copy roofline measured in the
# same run). Logs: -final.log, -final-decode-paths.{md,json}.
# .bin: llmc, cuda_vs_cpu, cuda_faults, COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee $OUT/final.log) 2>&1
# DEFINES: kernel defines for every plan compiled here (LLMC_EXPERIMENT_DEFINES), e.g. a measured
# choice before it becomes the source's default.
[ -n "${DEFINES:-}" ] && export LLMC_EXPERIMENT_DEFINES="$DEFINES"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' '), defines: ${DEFINES:-none}"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== tests ($(date -u +%T))"
timeout -s KILL 240 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |fused MLP,|panicked|result" | head -30
timeout -s KILL 40 .bin/cuda_faults --ignored --test-threads 1 2>&1 | grep -E "^test |panicked|result"
echo "== verify_full_scale ($(date -u +%T))"
timeout -s KILL 150 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-32 --shapes qwen2.5-1.5b,qwen3-1.7b --prompt-len 32 --steps 64 --max-seq-len 256 2>&1 | grep -E "llmc vs hf|pass|Error|error" | head -6
timeout -s KILL 120 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify-1024 --shapes qwen2.5-1.5b --prompt-len 1024 --steps 16 --max-seq-len 1100 2>&1 | grep -E "llmc vs hf|pass|Error|error" | head -3
[ "${PATHS:-1}" = 0 ] && { echo "done $(date -u +%T)"; exit 0; }
echo "== decode paths ($(date -u +%T))"
timeout -s KILL 300 python3 bench/decode_paths.py --llmc .bin/llmc --out /tmp/paths --shapes qwen2.5-1.5b,qwen3-1.7b,llama-3.2-3b --contexts 1024,8192 2>&1 | grep -v Writing | grep -v "^|" 
cp /tmp/paths/decode_paths.md $OUT/final-decode-paths.md; cp /tmp/paths/decode_paths.json $OUT/final-decode-paths.json
echo "done $(date -u +%T)"
