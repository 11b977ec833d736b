#!/usr/bin/env bash
# llmc serve measured from a client on the GPU (bench/serve_bench.py), the same plan's llmc bench first.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/final_e.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 - <<'PY' 2>&1 | tail -1
import sys, torch; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
m = random_model(make_config("qwen2.5-1.5b"), "cuda")
# The fixture tokenizer knows ids < 272 only: rows past it zeroed (embedding and the tied LM head),
# so greedy decoding emits ids with text and the server streams a chunk per token.
with torch.no_grad():
    m.get_input_embeddings().weight[272:] = 0
    m.get_output_embeddings().weight[272:] = 0
save_model(m, "/tmp/w/m")
print("model written")
PY
.bin/llmc compile /tmp/w/m -o /tmp/w/g.plan 2>&1 | tail -1 | cut -c1-40
echo "llmc bench: $(.bin/llmc bench /tmp/w/g.plan --prompt-len 32 --gen 512 | head -1)"
.bin/llmc serve /tmp/w/g.plan --port 8093 > $OUT/serve.log 2>&1 &
SERVER=$!
for i in $(seq 1 60); do curl -sf http://127.0.0.1:8093/health >/dev/null && break; sleep 1; done
timeout 200 python3 bench/serve_bench.py http://127.0.0.1:8093 --gen 512 --runs 3 --turn-words 140 2>&1 | tail -12
kill -TERM $SERVER; wait $SERVER; echo "server exit $?"
tail -3 $OUT/serve.log
