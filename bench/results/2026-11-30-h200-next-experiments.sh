#!/usr/bin/env bash
# NOT RUN YET: the two experiments of branches `attention-merge-in-oproj` (372cdfd: o_proj's x
# staging merges attention's splits, the units skip the ticket and the merge) and `kv-evict-last`
# (c32fcb8: the KV cache written and read with an L2 evict_last policy) against main (7926fe6; later main commits touch scripts only), in
# one device call: correctness first (fixture tests of both decode paths with splits, 10,000
# persistent replays, prefill; compute-sanitizer), then the Qwen2.5-1.5B shape after 32 (two
# rounds), 1,024 and 4,096 prompt tokens, and a trace of each persistent kernel. Binaries built
# here on 2026-11-30 into .bin (kept, git-excluded; .bin/COMMIT names them): llmc_main,
# llmc_merge, llmc_kv, cuda_vs_cpu_merge, cuda_vs_cpu_kv (52 MB: carry [".bin"]). Rebuild them if
# a branch moved: `git checkout B && cargo build --release && cargo test --release --no-run --test
# cuda_vs_cpu`, then copy target/release/llmc and the cuda_vs_cpu-* test binary under those names.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/next-experiments.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), binaries: $(tr '\n' ' ' < .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== merge: fixtures (both paths, splits of 8), 10,000 replays"
timeout 150 .bin/cuda_vs_cpu_merge --ignored --nocapture --test-threads 1 matches_cpu_on_every_fixture persistent_decode_replays 2>&1 | grep -E "min chunk 8|replays|panicked|result" | head -20
echo "== kv: fixtures, prefill"
timeout 150 .bin/cuda_vs_cpu_kv --ignored --nocapture --test-threads 1 matches_cpu_on_every_fixture cuda_prefill_matches 2>&1 | grep -E "min chunk 8|prefill|panicked|result" | head -20
LLMC_ATTN_MIN_CHUNK=8 .bin/llmc_merge compile tests/fixtures/qwen3_untied -o /tmp/fm.plan --max-seq-len 64 --decode persistent 2>&1 | tail -1 | cut -c1-30
LLMC_ATTN_MIN_CHUNK=8 .bin/llmc_kv compile tests/fixtures/qwen3_untied -o /tmp/fk.plan --max-seq-len 64 --decode persistent 2>&1 | tail -1 | cut -c1-30
for run in "merge memcheck" "merge racecheck" "kv memcheck"; do
  set -- $run
  echo "== compute-sanitizer $2, $1, persistent, qwen3_untied, 20-token prompt, splits of 8"
  LLMC_ATTN_MIN_CHUNK=8 timeout 60 compute-sanitizer --tool $2 --error-exitcode 9 .bin/llmc_$1 run /tmp/f${1:0:1}.plan --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
for b in main merge kv; do
  .bin/llmc_$b compile /tmp/w/m -o /tmp/w/$b-graph.plan --weights bf16 --max-seq-len 4352 2>&1 | tail -1 | cut -c1-30
  .bin/llmc_$b compile /tmp/w/m -o /tmp/w/$b-p.plan --weights bf16 --max-seq-len 4352 --decode persistent 2>&1 | tail -1 | cut -c1-30
done
for prompt in 32 32 1024 4096; do
  for run in "main graph" "main p" "merge p" "kv graph" "kv p"; do
    set -- $run
    echo "[$1 $2 prompt $prompt] $(timeout 40 .bin/llmc_$1 bench /tmp/w/$1-$2.plan --prompt-len $prompt --gen 128 2>&1 | head -1 | cut -c1-70)"
  done
done
for b in main merge kv; do
  timeout 40 .bin/llmc_$b bench /tmp/w/$b-p.plan --prompt-len 32 --gen 128 --trace $OUT/trace-$b.json 2>&1 | tail -1 | cut -c1-30
  echo "== trace, $b"
  python3 bench/trace_summary.py $OUT/trace-$b.json --attention | grep -E "one decode|^attention|^linear|layers.(1|14|27).attn "
done
