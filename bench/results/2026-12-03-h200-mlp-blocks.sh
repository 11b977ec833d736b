#!/usr/bin/env bash
# #13: two MLP experiments, three interleaved rounds on the random Qwen2.5-1.5B shape (bf16, 128
# tokens after 32 and 1,024): (a) the fused MLP's grid capped (LLMC_MLP_BLOCKS 112: 10 units a
# block, every block the same work; 128) against 132 SMs (64 blocks own 9 units, 68 own 8: the
# 9-unit blocks left 2-3 us after the others in -residual-copy-trace); (b) each MLP block asks L2
# for its part of the next layer's q/k/v weights (MLP_PREFETCH_NEXT 1: before its wait, 2: after
# gate/up, 3: after down's loads), so qkv_rope's weights, requested while the MLP's last blocks
# stream, hit L2. Traced steps of 112 blocks and of MLP_PREFETCH_NEXT=2.
# .bin: llmc, COMMIT (bff0256 with -mlp-blocks.patch).
# Result (15:28 UTC), ms/token after 32 / 1,024: 132 blocks 1.128 / 1.227-1.229; 112 blocks
# 1.111-1.117 / 1.249-1.260; 128 blocks 1.113-1.119 / 1.233-1.237; the L2 prefetch of the next
# q/k/v weights slower wherever it was asked (1: 1.136-1.137, 2: 1.155-1.157, 3: 1.139-1.143
# after 32). In the 112-block trace the next qkv_rope's blocks and all of attention_proj's start
# on the spare SMs before their waits; the MLP's own work is no shorter (22.37 against 22.64 us a
# launch), its last blocks still leave ~3 us after the median. Kept: a cap in the short-context
# graph only (-attn-proj-rows.log measured it again).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/w
exec > >(tee $OUT/mlp-blocks.log) 2>&1
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat .bin/COMMIT | tr '\n' ' ')"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 bench/make_random_qwen.py /tmp/w/m 2>&1 | tail -1
for p in 0 1 2 3; do
  LLMC_EXPERIMENT_DEFINES="MLP_PREFETCH_NEXT=$p" timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/n$p.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
done
LLMC_EXPERIMENT_DEFINES="MLP_PREFETCH_NEXT=2 TRACE_BLOCKS=1" timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/t2.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40 &
LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" timeout -s KILL 120 .bin/llmc compile /tmp/w/m -o /tmp/w/t0.plan --weights bf16 --max-seq-len 1152 2>&1 | tail -1 | cut -c1-40
wait $(jobs -p)  # not a bare wait: scripts/lint-device-scripts.sh
echo "== bench ($(date -u +%T))"
for r in 1 2 3; do
  for v in "132 n0" "112 n0" "128 n0" "132 n1" "132 n2" "132 n3"; do
    set -- $v
    echo "[blocks $1 $2, round $r] $(LLMC_MLP_BLOCKS=$1 timeout -s KILL 90 .bin/llmc bench /tmp/w/$2.plan --prompt-len 32,1024 --gen 128 --reps 2 2>&1 | grep -E 'prompt |rror|spin' | cut -c1-60 | tr '\n' ' ')"
  done
done
for v in "112 t0" "132 t2"; do
  set -- $v
  echo "[blocks $1 $2 traced] $(LLMC_MLP_BLOCKS=$1 timeout -s KILL 60 .bin/llmc bench /tmp/w/$2.plan --prompt-len 32 --gen 128 --reps 2 --trace $OUT/mlp-blocks-$1-$2.json 2>&1 | grep -E 'prompt |rror' | cut -c1-60)"
  python3 bench/graph_trace_summary.py $OUT/mlp-blocks-$1-$2.json --launches 4 2>&1 | tail -14; gzip -9 $OUT/mlp-blocks-$1-$2.json
done
echo "done $(date -u +%T)"
