#!/usr/bin/env bash
# tests/serve.rs (the openai client against llmc serve) on a GPU plan of the fixture.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
exec > >(tee $OUT/serve_gpu.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
python3 -c "import openai; print('openai', openai.__version__)"
LLMC_SERVE_TEST_TARGET=sm_90 timeout 240 .bin/serve --test-threads 1 2>&1 | grep -E "^test |panicked|result|assert|Error|error" | head -40
