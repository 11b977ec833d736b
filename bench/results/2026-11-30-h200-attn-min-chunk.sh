#!/usr/bin/env bash
# Decode attention's fewest positions per slice (LLMC_ATTN_MIN_CHUNK, read at load; default 16) on
# both decode paths, Qwen2.5-1.5B shape, 128 tokens after a 32-token prompt (positions 32..160) and
# after a 4,096-token one: in the persistent kernel each split costs two dependent L2 round trips
# (partials, merge), each pass of 64 positions one. Then a trace of the persistent kernel at the
# best value, per kind and per attention step (trace_summary --attention). Printed as it goes.
# Not run yet: this session's device time ran out first.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee $OUT/attn-min-chunk.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
.bin/llmc compile /tmp/w/m -o /tmp/w/graph.plan --weights bf16 --max-seq-len 4352 2>&1 | tail -1 | cut -c1-20
.bin/llmc compile /tmp/w/m -o /tmp/w/p.plan --weights bf16 --max-seq-len 4352 --decode persistent 2>&1 | tail -1 | cut -c1-20
for run in "p 16" "p 64" "graph 16" "graph 64" "p 32" "p 128" "p 256" "graph 128"; do
  set -- $run
  for prompt in 32 4096; do
    echo "[$1, min chunk $2, prompt $prompt] $(LLMC_ATTN_MIN_CHUNK=$2 timeout 40 .bin/llmc bench /tmp/w/$1.plan --prompt-len $prompt --gen 128 2>&1 | head -1 | cut -c1-62)"
  done
done
for chunk in 16 64; do
  LLMC_ATTN_MIN_CHUNK=$chunk timeout 40 .bin/llmc bench /tmp/w/p.plan --prompt-len 32 --gen 128 --trace $OUT/trace-$chunk.json 2>&1 | tail -1
  python3 bench/trace_summary.py $OUT/trace-$chunk.json --attention | grep -E "one decode|attention|qkv|linear_res|gate_up|layers.(1|14|27).attn "
done
