#!/usr/bin/env python3
"""Writes a Hugging Face model directory with random bf16 weights for a given config.json, so a
full-size compile can be timed without downloading a model. Needs numpy only.

    python3 bench/make_synthetic_model.py plans/configs/qwen2.5-1.5b.json /tmp/qwen-synth

The tokenizer is the small byte-level one of tests/fixtures/qwen2_tied (ids < 272): enough for
timing, not for text.
"""
import json, shutil, struct, sys
from pathlib import Path
import numpy as np

def shapes(c):
    h, f, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    nh, nkv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    d = c.get("head_dim", h // nh)
    arch = c["architectures"][0]
    yield "model.embed_tokens.weight", (c["vocab_size"], h)
    for l in range(L):
        p = f"model.layers.{l}."
        yield p + "input_layernorm.weight", (h,)
        yield p + "post_attention_layernorm.weight", (h,)
        yield p + "self_attn.q_proj.weight", (nh * d, h)
        yield p + "self_attn.k_proj.weight", (nkv * d, h)
        yield p + "self_attn.v_proj.weight", (nkv * d, h)
        yield p + "self_attn.o_proj.weight", (h, nh * d)
        if arch == "Qwen2ForCausalLM" or c.get("attention_bias"):
            yield p + "self_attn.q_proj.bias", (nh * d,)
            yield p + "self_attn.k_proj.bias", (nkv * d,)
            yield p + "self_attn.v_proj.bias", (nkv * d,)
        if arch == "LlamaForCausalLM" and c.get("attention_bias"):
            yield p + "self_attn.o_proj.bias", (h,)
        if arch == "Qwen3ForCausalLM":
            yield p + "self_attn.q_norm.weight", (d,)
            yield p + "self_attn.k_norm.weight", (d,)
        yield p + "mlp.gate_proj.weight", (f, h)
        yield p + "mlp.up_proj.weight", (f, h)
        yield p + "mlp.down_proj.weight", (h, f)
    yield "model.norm.weight", (h,)
    if not c.get("tie_word_embeddings", False):
        yield "lm_head.weight", (c["vocab_size"], h)

def main(config_path, out):
    c = json.loads(Path(config_path).read_text())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = list(shapes(c))
    header, offset = {}, 0
    for name, shape in tensors:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    rng = np.random.default_rng(0)
    # One random block of bf16 values (the top halves of N(0, 0.02) f32s), tiled per tensor.
    block = (rng.normal(0, 0.02, 1 << 22).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()
    with open(out / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name, shape in tensors:
            n = int(np.prod(shape)) * 2
            while n > 0:
                f.write(block[: min(n, len(block))])
                n -= min(n, len(block))
    (out / "config.json").write_text(json.dumps(c, indent=1))
    fixtures = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "qwen2_tied"
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(fixtures / name, out / name)
    print(out)

if __name__ == "__main__":
    main(*sys.argv[1:3])
