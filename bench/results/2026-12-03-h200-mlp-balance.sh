#!/usr/bin/env bash
# #13: the fused MLP's blocks of nine units of eight channels (64 of 132 for Qwen2.5-1.5B) were
# its slowest: half their warps ran five gate/up pairs against four, and down took a second slot
# for the ninth unit, halving every lane's loads in flight (README, "Inside each kernel's chain").
# One build, three forms (LLMC_EXPERIMENT_DEFINES, kernels/mlp.cu): MLP_BALANCE=0 as before, 1
# gate/up as triples in such blocks (three a warp), 2 also down's ninth unit as a tail of one bf16
# a lane. First the new GPU test (FFN 8,960 / 10,400 / 18,944: blocks of 8-18 units against the
# CPU executor) and compute-sanitizer memcheck, racecheck and synccheck on a 2-layer model of the
# 1.5B's hidden and FFN sizes (its 9-unit blocks); then three interleaved rounds of the three forms
# (random Qwen2.5-1.5B shape, bf16, 128 tokens after 32 and 1,024) and a traced step of 0 and 2
# (TRACE_BLOCKS=1: per block gate/up done, down done, exit; bench/results/*-mlp-balance-*.json.gz).
# .bin: llmc, cuda_vs_cpu, cuda_faults, COMMIT (built from 7acf955 with -mlp-balance.patch, not kept).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w /tmp/s
exec > >(tee $OUT/mlp-balance.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
( [ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1 ) &
model=$!
python3 - <<'PY'
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM
import shutil
cfg = Qwen2Config(vocab_size=272, hidden_size=1536, intermediate_size=8960, num_hidden_layers=2, num_attention_heads=12,
                  num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True, torch_dtype="bfloat16")
torch.manual_seed(0); torch.set_default_dtype(torch.bfloat16)
Qwen2ForCausalLM(cfg).save_pretrained("/tmp/s/m")
for f in ["tokenizer.json", "tokenizer_config.json"]: shutil.copy("tests/fixtures/qwen2_tied/" + f, "/tmp/s/m/" + f)
PY
echo "== the new test ($(date -u +%T))"
timeout -s KILL 120 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 fused_mlp 2>&1 | grep -E "^test |fused MLP|panicked|result" | head -10
.bin/llmc compile /tmp/s/m -o /tmp/s.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
for tool in memcheck racecheck synccheck; do
  echo "== compute-sanitizer $tool, graph, 2 layers of hidden 1,536 and FFN 8,960, 12-token prompt"
  timeout -s KILL 90 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/s.plan --prompt-ids $(seq -s, 1 12) --max-tokens 4 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
wait $model
for b in 0 1 2; do
  LLMC_EXPERIMENT_DEFINES="MLP_BALANCE=$b" .bin/llmc compile /tmp/w/m -o /tmp/w/b$b.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
done
for b in 0 2; do
  LLMC_EXPERIMENT_DEFINES="MLP_BALANCE=$b TRACE_BLOCKS=1" .bin/llmc compile /tmp/w/m -o /tmp/w/t$b.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
done
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
for r in 1 2 3; do for b in 0 1 2; do
  echo "[MLP_BALANCE=$b, round $r] $(timeout -s KILL 90 .bin/llmc bench /tmp/w/b$b.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-60 | tr '\n' ' ')"
done; done
for b in 0 2; do
  echo "[MLP_BALANCE=$b traced] $(timeout -s KILL 60 .bin/llmc bench /tmp/w/t$b.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/mlp-balance-$b.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
  python3 bench/graph_trace_summary.py $OUT/mlp-balance-$b.json --launches 6 2>&1 | tail -8; gzip -9 $OUT/mlp-balance-$b.json
done
echo "done $(date -u +%T)"
