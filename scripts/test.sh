#!/usr/bin/env bash
# The test suite, as CI runs it on a machine without a GPU: installs NVRTC from PyPI (so every
# CUDA kernel is compiled for sm_80 and sm_90), the openai client (tests/serve.rs drives
# `llmc serve` with it) and gguf-py, which brings numpy (tests/real_model.rs's f32 reference),
# fetches the real model (cached under ~/.cache), then checks formatting, runs every test (the
# real-model tests on the CPU executor included) and the lints (clippy, warnings are errors).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check nvidia-cuda-nvrtc==13.0.88 openai==3.57.0 gguf==0.19.0
NVRTC_LIB="$(python3 -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))')"
export LD_LIBRARY_PATH="${NVRTC_LIB}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LLMC_GGUF="$(scripts/fetch-model.sh | tail -n 1)"
# Formatting (rustfmt.toml) first: it fails in a second, before any build.
cargo fmt --check
# The device scripts: no bare `wait` under a `>(tee ...)` log (it never returns).
bash scripts/lint-device-scripts.sh
cargo test --release
# The real-model tests, #[ignore]d in a plain `cargo test` (they need LLMC_GGUF): end to end on the
# CPU executor (logits against gguf-py's f32 reference included), and every tensor of the file
# against gguf-py's dequantization.
cargo test --release --test real_model -- --ignored
cargo test --release --lib -- --ignored real_qwen2_5_coder_q4_k_m
# Lints, every target (tests, benches' helpers) included; a warning fails the run.
cargo clippy --release --all-targets -- -D warnings
