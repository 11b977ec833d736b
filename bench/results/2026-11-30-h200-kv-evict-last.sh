#!/usr/bin/env bash
# NOT RUN YET (written at the end of a session without device time; branch kv-evict-last).
# Are decode attention's K/V loads L2 misses? The attention probe (-attention-probe.log) put 2.1
# us between q staged and the scores done, for arithmetic that should take ~0.6 us; the K rows
# were requested before the wait and may come from HBM under the weight stream. The branch
# writes the KV cache with an L2 evict_last policy (qkv_rope, prefill_rope) and loads K/V rows
# with it (attention), so they stay in L2 under the evict_first weights. Fixture tests of both
# paths, then the Qwen2.5-1.5B shape, graph and persistent, main (.bin/llmc_main) against the
# branch (.bin/llmc), after 32 (two rounds), 1,024 and 4,096 prompt tokens, and the attention
# steps of a trace of each. .bin: llmc (branch), llmc_main, cuda_vs_cpu (branch).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/kv-evict-last.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"
timeout 100 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 matches_cpu_on_every_fixture 2>&1 | grep -E "min chunk 8|panicked|result" | head -20
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
  python3 bench/trace_summary.py $OUT/trace-$b.json --attention | grep -E "one decode|^attention|layers.(1|14|27).attn "
done
