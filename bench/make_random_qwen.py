"""Writes a randomly initialised, full-size Qwen2.5-1.5B-shaped model (bf16 safetensors) for the
GPU bench, with the tiny fixture tokenizer (token ids are all the bench feeds it). --layers and
--vocab shrink it with the same hidden and FFN sizes (e.g. 2 layers and the tokenizer's 272 ids:
a model whose fused MLP has the 1.5B's blocks, small enough for compute-sanitizer).
Usage: python3 bench/make_random_qwen.py OUT_DIR [--layers 28] [--vocab 151936]"""
import argparse
import shutil

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--layers", type=int, default=28)
ap.add_argument("--vocab", type=int, default=151936, help="at least the fixture tokenizer's 272")
args = ap.parse_args()
out = args.out
config = Qwen2Config(
    vocab_size=args.vocab,
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=args.layers,
    num_attention_heads=12,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    torch_dtype="bfloat16",
)
torch.manual_seed(0)
torch.set_default_dtype(torch.bfloat16)
device = "cuda" if torch.cuda.is_available() else "cpu"
with torch.device(device):  # initialising on the GPU takes seconds, not minutes
    model = Qwen2ForCausalLM(config)
model.save_pretrained(out)
for name in ["tokenizer.json", "tokenizer_config.json"]:
    shutil.copy(f"tests/fixtures/qwen2_tied/{name}", out)
print(f"wrote {out}: {sum(p.numel() for p in model.parameters())} parameters")
