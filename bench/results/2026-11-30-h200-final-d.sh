#!/usr/bin/env bash
# Final device run at the committed code: GPU tests (both decode paths, logprobs), faults,
# sanitizers (both paths, attention splits merged), llmc serve measured from a client, decode paths.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/final_d.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 170 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |worst|replays|draws|top_logprobs|changes|panicked|result" | head -80
timeout 60 .bin/cuda_faults --ignored --nocapture --test-threads 1 2>&1 | grep -E "^test |panicked|result"
for d in graph persistent; do
  LLMC_ATTN_MIN_CHUNK=8 .bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/fp-$d.plan --max-seq-len 64 --decode $d 2>&1 | tail -1 | cut -c1-40
  for tool in memcheck racecheck; do
    [ $d = graph ] && [ $tool = racecheck ] && continue
    echo "== compute-sanitizer $tool, $d, 20-token prompt, splits of 8"
    LLMC_ATTN_MIN_CHUNK=8 timeout 100 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/fp-$d.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
  done
done
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
.bin/llmc compile /tmp/w/m -o /tmp/w/g.plan 2>&1 | tail -1 | cut -c1-40
echo "llmc bench: $(.bin/llmc bench /tmp/w/g.plan --prompt-len 32 --gen 256 | head -1)"
.bin/llmc serve /tmp/w/g.plan --port 8093 > $OUT/serve.log 2>&1 &
SERVER=$!
for i in $(seq 1 60); do curl -sf http://127.0.0.1:8093/health >/dev/null && break; sleep 1; done
timeout 150 python3 bench/serve_bench.py http://127.0.0.1:8093 --gen 256 --runs 3 2>&1 | tail -8
kill -TERM $SERVER; wait $SERVER; echo "server exit $?"
tail -3 $OUT/serve.log
rm -rf /tmp/w
timeout 200 python3 bench/decode_paths.py --llmc .bin/llmc --out $OUT --shapes qwen2.5-1.5b,qwen3-1.7b,llama-3.2-3b --contexts 8192 2>&1 | grep -v "Writing model\|Loading weights" | tail -8
