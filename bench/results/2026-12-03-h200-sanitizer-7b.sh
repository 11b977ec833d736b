#!/usr/bin/env bash
# After 638f968 (the fused MLP's block order, a GEMV's norm weight staged first): compute-sanitizer
# memcheck, racecheck and synccheck on a fixture's graph plan and on a 2-layer model of the 1.5B's
# hidden and FFN sizes (its fused MLP with eight- and nine-unit blocks), then both decode paths on
# the Qwen2-7B shape (bench/decode_paths.py, random bf16, prompt 32, 128 tokens).
# .bin: llmc, COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/s
exec > >(tee $OUT/sanitizer-7b.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 - <<'PY'
import torch, shutil
from transformers import Qwen2Config, Qwen2ForCausalLM
cfg = Qwen2Config(vocab_size=272, hidden_size=1536, intermediate_size=8960, num_hidden_layers=2, num_attention_heads=12,
                  num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True, torch_dtype="bfloat16")
torch.manual_seed(0); torch.set_default_dtype(torch.bfloat16)
Qwen2ForCausalLM(cfg).save_pretrained("/tmp/s/m")
for f in ["tokenizer.json", "tokenizer_config.json"]: shutil.copy("tests/fixtures/qwen2_tied/" + f, "/tmp/s/m/" + f)
PY
.bin/llmc compile /tmp/s/m -o /tmp/s.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
.bin/llmc compile tests/fixtures/qwen3_untied -o /tmp/fg.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
for plan in /tmp/fg.plan /tmp/s.plan; do for tool in memcheck racecheck synccheck; do
  echo "== compute-sanitizer $tool, graph, $plan, 12-token prompt"
  timeout -s KILL 90 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run $plan --prompt-ids $(seq -s, 1 12) --max-tokens 4 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done; done
echo "== Qwen2-7B decode paths ($(date -u +%T))"
timeout -s KILL 240 python3 bench/decode_paths.py --llmc .bin/llmc --out /tmp/7b --shapes qwen2-7b 2>&1 | grep -v Writing | grep -v "^|"
cp /tmp/7b/decode_paths.md $OUT/decode-paths-7b.md
echo "done $(date -u +%T)"
