#!/usr/bin/env bash
# Attention blocks of one query head (LLMC_ATTN_UNIT_HEADS=1, the new default) against blocks of
# a KV head's whole group (=6 for Qwen2.5-1.5B, the earlier kernel) and of two heads: GPU tests
# first (fixtures on both decode paths, split and whole, 10,000 persistent replays), then decode
# of the Qwen2.5-1.5B shape on both paths after 32 (two rounds), 1,024 and 4,096 prompt tokens,
# and a persistent trace of each. .bin: llmc, cuda_vs_cpu (built here, .bin/COMMIT).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/attention-unit-heads.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 120 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 cuda_matches_cpu_on_every_fixture persistent_decode_replays 2>&1 | grep -E "^test |min chunk|replays|panicked|result" | head -30
LLMC_ATTN_MIN_CHUNK=8 .bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/fp.plan --max-seq-len 64 --decode persistent 2>&1 | tail -1 | cut -c1-40
for tool in memcheck racecheck; do
  echo "== compute-sanitizer $tool, persistent, qwen2_tied, 20-token prompt, splits of 8"
  LLMC_ATTN_MIN_CHUNK=8 timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fp.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
.bin/llmc compile /tmp/w/m -o /tmp/w/graph.plan --weights bf16 --max-seq-len 4352 2>&1 | tail -1 | cut -c1-40
for uh in 1 2 6; do
  LLMC_ATTN_UNIT_HEADS=$uh .bin/llmc compile /tmp/w/m -o /tmp/w/p$uh.plan --weights bf16 --max-seq-len 4352 --decode persistent 2>&1 | tail -1 | cut -c1-40
done
for prompt in 32 32 1024 4096; do
  for uh in 1 2 6; do
    for path in graph p$uh; do
      echo "[$path, heads $uh, prompt $prompt] $(LLMC_ATTN_UNIT_HEADS=$uh timeout 60 .bin/llmc bench /tmp/w/$path.plan --prompt-len $prompt --gen 128 2>&1 | head -1 | cut -c1-80)"
    done
  done
done
for uh in 1 6; do
  LLMC_ATTN_UNIT_HEADS=$uh timeout 40 .bin/llmc bench /tmp/w/p$uh.plan --prompt-len 32 --gen 128 --trace $OUT/trace-$uh.json 2>&1 | tail -1 | cut -c1-30
  echo "== trace, unit heads $uh"
  python3 bench/trace_summary.py $OUT/trace-$uh.json --attention | grep -E "one decode|^attention|^linear|layers.(1|14|27).attn "
done
