#!/usr/bin/env bash
# NOT RUN YET (written at the end of a session without device time; branch
# attention-merge-in-oproj). The persistent kernel's attention units leave their splits unmerged
# and o_proj's x staging merges them (kernels/persistent.cu AttentionInput, the merge's own order
# and arithmetic, so x should be bit for bit what the attention merge wrote): the attention probe
# (-attention-probe.log) put the last-block ticket (0.6 us) and the merge (2.3-2.5 us) on every
# split layer's critical path. Every GPU test (fixtures with splits of 8 on both paths, 10,000
# persistent replays), compute-sanitizer on the persistent path with splits, full scale vs
# transformers f32 on the persistent path, then the Qwen2.5-1.5B shape, main (.bin/llmc_main)
# against the branch (.bin/llmc), graph and persistent, after 32 (two rounds), 1,024 and 4,096
# prompt tokens, and a trace of each persistent kernel. .bin: llmc, llmc_main, cuda_vs_cpu.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/merge-in-oproj.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"
timeout 200 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 matches_cpu_on_every_fixture persistent_decode_replays 2>&1 | grep -E "min chunk 8|replays|panicked|result" | head -20
LLMC_ATTN_MIN_CHUNK=8 .bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/fp.plan --max-seq-len 64 --decode persistent 2>&1 | tail -1 | cut -c1-30
for tool in memcheck racecheck synccheck; do
  echo "== compute-sanitizer $tool, persistent, qwen3_untied, 20-token prompt, splits of 8"
  LLMC_ATTN_MIN_CHUNK=8 timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fp.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
timeout 120 python3 bench/verify_full_scale.py --llmc .bin/llmc --out /tmp/verify --shapes qwen2.5-1.5b --decode persistent --prompt-len 200 2>&1 | grep -E "llmc vs hf f32|Error|error" | head -3
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
for b in llmc llmc_main; do
  .bin/$b compile /tmp/w/m -o /tmp/w/$b-graph.plan --weights bf16 --max-seq-len 4352 2>&1 | tail -1 | cut -c1-30
  .bin/$b compile /tmp/w/m -o /tmp/w/$b-p.plan --weights bf16 --max-seq-len 4352 --decode persistent 2>&1 | tail -1 | cut -c1-30
done
for prompt in 32 32 1024 4096; do
  for b in llmc_main llmc; do
    for path in graph p; do echo "[$b $path prompt $prompt] $(timeout 40 .bin/$b bench /tmp/w/$b-$path.plan --prompt-len $prompt --gen 128 2>&1 | head -1 | cut -c1-70)"; done
  done
done
for b in llmc_main llmc; do
  timeout 40 .bin/$b bench /tmp/w/$b-p.plan --prompt-len 32 --gen 128 --trace $OUT/trace-$b.json 2>&1 | tail -1 | cut -c1-30
  python3 bench/trace_summary.py $OUT/trace-$b.json --attention | grep -E "one decode|^attention|^linear|layers.(1|14|27).attn "
done
