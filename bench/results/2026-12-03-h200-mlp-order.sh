#!/usr/bin/env bash
# #13: in the fused MLP the blocks start in index order as the SMs free up (mlp-balance's trace:
# blocks 0-39 start 3-7 us before the grid wait returns, the rest within 1.6 us of it, and their
# wait returns up to 2.2 us later), while the 64 blocks owning a ninth unit were spread over the
# indices, so late blocks with nine units left last. Two changes behind defines in one build:
# MLP_FIRST_EXTRA=1 gives the extra units to the first blocks (kernels/mlp.cu), GEMV_NORM_FIRST=1
# stages a GEMV's norm weight before requesting its first weights, so the norm's L2 round trip
# does not queue behind them (kernels/gemv.cu gemv_tasks: q/k/v, the fused MLP, the LM head).
# The fused-MLP GPU test and compute-sanitizer memcheck, racecheck and synccheck on a 2-layer
# model of the 1.5B's hidden and FFN sizes (defaults: MLP_FIRST_EXTRA=1, GEMV_NORM_FIRST=0),
# then three interleaved rounds of the four combinations (random Qwen2.5-1.5B shape, bf16, 128
# tokens after 32 and 1,024) and a traced step of each MLP order. Both changes are the source
# since 638f968 (the defines are gone), so on later commits the four plans are alike.
# .bin: llmc, cuda_vs_cpu, cuda_faults, COMMIT.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w /tmp/s
exec > >(tee $OUT/mlp-order.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
( [ -e /tmp/w/m/config.json ] || python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1 ) &
model=$!
[ -e /tmp/s/m/config.json ] || python3 - <<'PY'
import torch, shutil
from transformers import Qwen2Config, Qwen2ForCausalLM
cfg = Qwen2Config(vocab_size=272, hidden_size=1536, intermediate_size=8960, num_hidden_layers=2, num_attention_heads=12,
                  num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True, torch_dtype="bfloat16")
torch.manual_seed(0); torch.set_default_dtype(torch.bfloat16)
Qwen2ForCausalLM(cfg).save_pretrained("/tmp/s/m")
for f in ["tokenizer.json", "tokenizer_config.json"]: shutil.copy("tests/fixtures/qwen2_tied/" + f, "/tmp/s/m/" + f)
PY
echo "== the fused-MLP test ($(date -u +%T))"
timeout -s KILL 120 .bin/cuda_vs_cpu --ignored --nocapture --test-threads 1 fused_mlp 2>&1 | grep -E "^test |fused MLP|panicked|result" | head -10
.bin/llmc compile /tmp/s/m -o /tmp/s.plan --max-seq-len 64 2>&1 | tail -1 | cut -c1-40
for tool in memcheck racecheck synccheck; do
  echo "== compute-sanitizer $tool, graph, 2 layers of hidden 1,536 and FFN 8,960, 12-token prompt"
  timeout -s KILL 90 compute-sanitizer --tool $tool --error-exitcode 9 .bin/llmc run /tmp/s.plan --prompt-ids $(seq -s, 1 12) --max-tokens 4 --ignore-eos 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
done
wait $model
for e in 0 1; do for n in 0 1; do
  LLMC_EXPERIMENT_DEFINES="MLP_FIRST_EXTRA=$e GEMV_NORM_FIRST=$n" .bin/llmc compile /tmp/w/m -o /tmp/w/e${e}n$n.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
done
  LLMC_EXPERIMENT_DEFINES="MLP_FIRST_EXTRA=$e TRACE_BLOCKS=1" .bin/llmc compile /tmp/w/m -o /tmp/w/t$e.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
done
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
for r in 1 2 3; do for v in e0n0 e1n0 e0n1 e1n1; do
  echo "[$v, round $r] $(timeout -s KILL 90 .bin/llmc bench /tmp/w/$v.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror' | cut -c1-60 | tr '\n' ' ')"
done; done
for e in 0 1; do
  echo "[MLP_FIRST_EXTRA=$e traced] $(timeout -s KILL 60 .bin/llmc bench /tmp/w/t$e.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/mlp-order-$e.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
  python3 bench/graph_trace_summary.py $OUT/mlp-order-$e.json --launches 6 2>&1 | tail -5; gzip -9 $OUT/mlp-order-$e.json
done
echo "done $(date -u +%T)"
