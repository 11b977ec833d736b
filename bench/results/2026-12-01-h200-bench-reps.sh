#!/usr/bin/env bash
# `llmc bench` with decode after every prompt length, --reps runs each (mean, sd): a fixture's
# persistent plan with --json and --trace (the paths run), then the Qwen2.5-1.5B shape (random
# bf16 weights, graph decode) after 32 and 1,024 tokens, 128 generated, 3 runs. .bin: llmc.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee $OUT/bench-reps.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
.bin/llmc compile tests/fixtures/qwen2_tied -o /tmp/fp.plan --max-seq-len 64 --decode persistent 2>&1 | tail -1 | cut -c1-40
.bin/llmc bench /tmp/fp.plan --prompt-len 8,20 --gen 16 --json --trace /tmp/t.json; echo "exit $?"
python3 -c "import json; print(len(json.load(open('/tmp/t.json'))), 'trace rows')"
.bin/llmc bench /tmp/fp.plan --prompt-len 60 --gen 16; echo "exit $? (60 + 16 > 64)"
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
.bin/llmc compile /tmp/w/m -o /tmp/w/g.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
timeout 120 .bin/llmc bench /tmp/w/g.plan --prompt-len 32,1024 --gen 128
