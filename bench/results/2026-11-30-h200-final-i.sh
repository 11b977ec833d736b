#!/usr/bin/env bash
# After a677c8f's kernels were reverted (5418e86: the kernels of e3fbafe, the persistent attention
# units of two heads): the block-format plans against the CPU and the 10,000 persistent replays
# (cut by the previous call's timeout), then decode of the Qwen2.5-1.5B shape, bf16 on both paths
# after 32 (two rounds), 1,024 and 4,096 prompt tokens and --quantize q4_k / q8_0 (graph), with
# nothing else running on the machine. .bin: llmc, cuda_vs_cpu.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/final-i.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 block_format_plans persistent_decode_replays 2>&1 | grep -E "^test |replays|FFN|panicked|result" | head -20
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
.bin/llmc compile /tmp/w/m -o /tmp/w/graph.plan --weights bf16 --max-seq-len 4352 2>&1 | tail -1 | cut -c1-40
.bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 4352 --decode persistent 2>&1 | tail -1 | cut -c1-40
for q in q4_k q8_0; do .bin/llmc compile /tmp/w/m -o /tmp/w/$q.plan --quantize $q --max-seq-len 4352 2>&1 | tail -1 | cut -c1-40; done
for round in 1 2; do
  for path in graph p q4_k q8_0; do echo "[$path, prompt 32, round $round] $(timeout 60 .bin/llmc bench /tmp/w/$path.plan --prompt-len 32 --gen 128 2>&1 | head -1 | cut -c1-80)"; done
done
for prompt in 1024 4096; do
  for path in graph p q4_k q8_0; do echo "[$path, prompt $prompt] $(timeout 60 .bin/llmc bench /tmp/w/$path.plan --prompt-len $prompt --gen 128 2>&1 | head -1 | cut -c1-80)"; done
done
