#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets under fuzz/corpus/<target>/seed-*.

The plan seed is compiled by llmc from the tiny model this writes to fuzz/target/tiny_model (see
fuzz/README.md); every other seed is written here.
"""
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, "seed-" + name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- safetensors
# Shapes of every weight of fuzz/safetensors_config.json (Qwen3, hidden 8, heads 2x4, kv 1, ffn 16,
# vocab 16, one layer, attention biases, untied head).
H, F, D, Q, KV, V = 8, 16, 4, 8, 4, 16
LAYER = {
    "input_layernorm.weight": [H], "post_attention_layernorm.weight": [H],
    "self_attn.q_proj.weight": [Q, H], "self_attn.k_proj.weight": [KV, H], "self_attn.v_proj.weight": [KV, H],
    "self_attn.q_proj.bias": [Q], "self_attn.k_proj.bias": [KV], "self_attn.v_proj.bias": [KV],
    "self_attn.q_norm.weight": [D], "self_attn.k_norm.weight": [D],
    "self_attn.o_proj.weight": [H, Q], "self_attn.o_proj.bias": [H],
    "mlp.gate_proj.weight": [F, H], "mlp.up_proj.weight": [F, H], "mlp.down_proj.weight": [H, F],
}
TENSORS = {"model.embed_tokens.weight": [V, H], "model.norm.weight": [H], "lm_head.weight": [V, H]}
TENSORS.update({f"model.layers.0.{k}": v for k, v in LAYER.items()})
SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I8": 1}


def safetensors(tensors):
    """tensors: name -> (dtype, shape); data is a byte ramp."""
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, (dtype, shape) in tensors.items():
        n = SIZE[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + n]}
        data += bytes(i % 251 for i in range(n))
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


dtypes = ["BF16", "F16", "F32"]
put("safetensors", "bf16", safetensors({k: ("BF16", s) for k, s in TENSORS.items()}))
put("safetensors", "mixed", safetensors({k: (dtypes[i % 3], s) for i, (k, s) in enumerate(TENSORS.items())}))
put("safetensors", "wrong-shapes-i8", safetensors({k: ("I8", s[::-1] + [1]) for k, s in TENSORS.items()}))
# The real fixture's header, with its data cut short.
with open(os.path.join(ROOT, "tests/fixtures/qwen2_tied/model.safetensors"), "rb") as f:
    fixture = f.read()
header_end = 8 + struct.unpack("<Q", fixture[:8])[0]
put("safetensors", "fixture-truncated", fixture[: header_end + 1024])

# ---------------------------------------------------------------- gguf
# The same layout as src/load/gguf/test_writer.rs.
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(meta, tensors):
    """meta: list of (key, type id, encoded value); tensors: list of (name, dims, type id, bytes)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta))
    for key, type_id, value in meta:
        out += gstr(key) + struct.pack("<I", type_id) + value
    data = b""
    for name, dims, type_id, payload in tensors:
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", type_id, len(data))
        data += payload + b"\0" * (-len(payload) % 32)
    out += b"\0" * (-len(out) % 32)
    return out + data


u32 = lambda x: struct.pack("<I", x)
f32 = lambda x: struct.pack("<f", x)
strs = lambda items: u32(8) + struct.pack("<Q", len(items)) + b"".join(gstr(s) for s in items)
i32s = lambda items: u32(5) + struct.pack("<Q", len(items)) + b"".join(struct.pack("<i", x) for x in items)
TOKENS = ["a", "b", "ab", "\u0120", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "[PAD7]"]
TYPES = [1, 1, 1, 1, 3, 3, 3, 5]


def ramp(n, size):
    return bytes((i * 7) % 256 for i in range(n * size))


# Bytes per block of 32 (or 256 for k-quants) elements, by ggml type id.
BLOCK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
         12: (256, 144), 13: (256, 176), 14: (256, 210), 10: (256, 84)}


def tensor(name, dims, type_id):
    block, nbytes = BLOCK[type_id]
    n = 1
    for d in dims:
        n *= d
    payload = bytes(((i * 37) % 251) for i in range(n // block * nbytes))
    if type_id in (1, 30):  # keep half floats finite: small exponents
        payload = bytes(b & 0x3B if i % 2 else b for i, b in enumerate(payload))
    return (name, dims, type_id, payload)


def gguf_model(arch, pre, hidden, ffn, types):
    """One layer, 2 heads of hidden/2, 1 KV head, vocab 8; `types` maps a tensor to its ggml type."""
    key = lambda k: f"{arch}.{k}"
    kv = hidden // 2
    meta = [
        ("general.architecture", 8, gstr(arch)),
        (key("block_count"), 4, u32(1)),
        (key("context_length"), 4, u32(64)),
        (key("embedding_length"), 4, u32(hidden)),
        (key("feed_forward_length"), 4, u32(ffn)),
        (key("attention.head_count"), 4, u32(2)),
        (key("attention.head_count_kv"), 4, u32(1)),
        (key("attention.layer_norm_rms_epsilon"), 6, f32(1e-5)),
        (key("rope.freq_base"), 6, f32(1e6)),
        ("general.alignment", 4, u32(32)),
        ("tokenizer.ggml.model", 8, gstr("gpt2")),
        ("tokenizer.ggml.pre", 8, gstr(pre)),
        ("tokenizer.ggml.tokens", 9, strs(TOKENS)),
        ("tokenizer.ggml.token_type", 9, i32s(TYPES)),
        ("tokenizer.ggml.merges", 9, strs(["a b"])),
        ("tokenizer.ggml.bos_token_id", 4, u32(4)),
        ("tokenizer.ggml.eos_token_id", 4, u32(6)),
        ("tokenizer.chat_template", 8, gstr("{{ messages }}")),
    ]
    shapes = {
        "token_embd.weight": [hidden, 8], "output_norm.weight": [hidden], "output.weight": [hidden, 8],
        "blk.0.attn_norm.weight": [hidden], "blk.0.ffn_norm.weight": [hidden],
        "blk.0.attn_q.weight": [hidden, hidden], "blk.0.attn_k.weight": [hidden, kv], "blk.0.attn_v.weight": [hidden, kv],
        "blk.0.attn_q.bias": [hidden], "blk.0.attn_k.bias": [kv], "blk.0.attn_v.bias": [kv],
        "blk.0.attn_output.weight": [hidden, hidden],
        "blk.0.ffn_gate.weight": [hidden, ffn], "blk.0.ffn_up.weight": [hidden, ffn], "blk.0.ffn_down.weight": [ffn, hidden],
    }
    if arch == "qwen3":
        shapes["blk.0.attn_q_norm.weight"] = [hidden // 2]
        shapes["blk.0.attn_k_norm.weight"] = [hidden // 2]
    return gguf(meta, [tensor(n, dims, types.get(n, 0)) for n, dims in shapes.items()])


put("gguf", "qwen2-q8_0-q4_0-f16", gguf_model("qwen2", "qwen2", 32, 32, {
    "blk.0.attn_q.weight": 8, "blk.0.attn_k.weight": 2, "blk.0.attn_v.weight": 1, "token_embd.weight": 30}))
put("gguf", "llama-q4_1-q5_0-q5_1", gguf_model("llama", "llama-bpe", 32, 32, {
    "blk.0.attn_q.weight": 3, "blk.0.attn_k.weight": 6, "blk.0.attn_v.weight": 7, "blk.0.attn_output.weight": 1}))
put("gguf", "qwen3-q4_k-q6_k", gguf_model("qwen3", "qwen2", 32, 256, {
    "blk.0.ffn_gate.weight": 1, "blk.0.ffn_down.weight": 12, "blk.0.ffn_up.weight": 30}))
put("gguf", "llama-q5_k-q2_k", gguf_model("llama", "llama3", 32, 256, {
    "blk.0.ffn_down.weight": 13, "blk.0.attn_q.weight": 2, "blk.0.ffn_up.weight": 10}))

# ---------------------------------------------------------------- config
for d in sorted(os.listdir(os.path.join(ROOT, "tests/fixtures"))):
    path = os.path.join(ROOT, "tests/fixtures", d, "config.json")
    if os.path.exists(path):
        put("config", d, open(path, "rb").read())
for name in sorted(os.listdir(os.path.join(ROOT, "plans/configs"))):
    put("config", name[: -len(".json")], open(os.path.join(ROOT, "plans/configs", name), "rb").read())

# ---------------------------------------------------------------- plan (input model)
model = os.path.join(ROOT, "fuzz", "target", "tiny_model")
os.makedirs(model, exist_ok=True)
config = json.load(open(os.path.join(ROOT, "fuzz/safetensors_config.json")))
config.update({"vocab_size": 272, "max_position_embeddings": 8, "eos_token_id": 266})
json.dump(config, open(os.path.join(model, "config.json"), "w"), indent=1)
shutil.copy(os.path.join(ROOT, "tests/fixtures/qwen2_tied/tokenizer.json"), model)
tiny = dict(TENSORS, **{"model.embed_tokens.weight": [272, H], "lm_head.weight": [272, H]})
with open(os.path.join(model, "model.safetensors"), "wb") as f:
    f.write(safetensors({k: ("BF16", s) for k, s in tiny.items()}))
