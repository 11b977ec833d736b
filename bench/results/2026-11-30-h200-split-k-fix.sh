#!/usr/bin/env bash
# One device call after the split-K kernel became its own instantiation: the GPU tests that run
# prefill (block formats with 100-token prompts, split K on their small GEMMs; every fixture),
# sanitizer on split-K prefill, TTFT of 27c8c64 (.bin/llmc_main) vs HEAD (.bin/llmc) interleaved,
# the read-only roofline, and where a 1,024-token bf16 prefill's time goes (ncu, kernels alone).
# Build here: cargo build --release and cargo test --release --no-run --test cuda_vs_cpu, copied
# to .bin/; the 27c8c64 build as .bin/llmc_main; carry .bin/llmc, .bin/llmc_main, .bin/cuda_vs_cpu,
# .bin/blockfix6k, .bin/COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/split-k-fix.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 block_format_plans prefill_matches 2>&1 | grep -E "^test |worst|panicked|result" | head -30
.bin/llmc compile .bin/blockfix6k -o /tmp/bf-q4_k.plan --quantize q4_k --max-seq-len 128 2>&1 | tail -1 | cut -c1-30
for tool in memcheck racecheck; do
  echo "== compute-sanitizer $tool, q4_k, FFN 6144, 70-token prompt (split-K prefill_gemm_split_k_q) + 8 tokens"
  timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/bf-q4_k.plan --prompt-ids $(seq -s, 1 70) --max-tokens 8 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
python3 - <<'PY' 2>&1 | tail -1
import sys; sys.path.insert(0, "bench")
from common import make_config, random_model, save_model
save_model(random_model(make_config("qwen2.5-1.5b"), "cuda"), "/tmp/w/m")
print("model written")
PY
for w in bf16 q4_k; do
  if [ $w = bf16 ]; then flag="--weights bf16"; else flag="--quantize $w"; fi
  for bin in llmc_main llmc; do .bin/$bin compile /tmp/w/m -o /tmp/w/$w-$bin.plan $flag 2>&1 | tail -1 | cut -c1-40; done
  for round in 1 2; do for bin in llmc_main llmc; do
    echo "$w ($bin, round $round): $(timeout 90 .bin/$bin bench /tmp/w/$w-$bin.plan --prompt-len 32,128,1024 --gen 64 2>&1 | head -3 | grep -o 'ms/token.*tok/s\|[0-9.]*% of the read-only.*GB/s)\|TTFT.*)' | tr '\n' ' ')"
  done; done
done
timeout 300 ncu --metrics gpu__time_duration.sum --csv .bin/llmc run /tmp/w/bf16-llmc.plan --prompt-ids $(seq -s, 1 1024) --max-tokens 1 --ignore-eos > /tmp/ncu.csv 2>/dev/null
python3 - <<'PY'
import csv, collections
rows = [r for r in csv.reader(open("/tmp/ncu.csv")) if len(r) > 10]
head = rows[0]; k, v, u = head.index("Kernel Name"), head.index("Metric Value"), head.index("Metric Unit")
scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}
tot = collections.Counter(); cnt = collections.Counter()
for r in rows[1:]:
    name = r[k].split("(")[0]; tot[name] += float(r[v].replace(",", "")) * scale[r[u]]; cnt[name] += 1
s = sum(tot.values())
print(f"1,024-token bf16 prefill + 1 decode step, each kernel alone: {s/1e3:.2f} ms in {sum(cnt.values())} kernels")
for name, us in tot.most_common(): print(f"  {name:28s} {cnt[name]:4d} x {us/cnt[name]:8.1f} us = {us/1e3:7.2f} ms ({100*us/s:4.1f}%)")
PY
