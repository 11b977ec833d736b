"""Precision probe (python3 with torch and transformers; GPU if there is one, else CPU): how far
from an f32 forward over the same bf16 weights do bf16 stores of each activation put the logits?
Emulates llmc's decode graph in torch (f32 accumulation; a chosen set of activations rounded to
bf16: x normed GEMV inputs, q rotated query, kv the K/V cache, a attention output, s SiLU*up, h
residual) on random full-size Qwen2.5-1.5B and Llama-3.2-3B shapes (plain RoPE), 32 random
tokens, and prints the relative logit error ||got - f32|| / ||f32|| next to transformers' own
bf16 run and to transformers' f32 run with another attention kernel (the f32 noise floor).
Usage: python3 bench/precision_probe.py [qwen2.5-1.5b] [llama-3.2-3b]"""
import math

import torch
import transformers
from transformers import Qwen2Config, LlamaConfig
DEV = "cuda" if torch.cuda.is_available() else "cpu"
# Which activations to keep in f32, one probe each (see run()); the first is llmc as it stores today.
VARIANTS = [(), ("h",), ("h", "a", "s", "q", "x"), ("x", "q", "a", "s", "h", "kv")]
torch.manual_seed(0)
def qwen():
    c = Qwen2Config(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                    num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True)
    return c
def llama():
    c = LlamaConfig(vocab_size=128256, hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24,
                    num_key_value_heads=8, rope_theta=5e5, rms_norm_eps=1e-5, tie_word_embeddings=True, head_dim=128)
    return c
import sys
SHAPES = {"qwen2.5-1.5b": qwen, "llama-3.2-3b": llama}
for name in sys.argv[1:] or SHAPES:
    mk = SHAPES[name]
    cfg = mk()
    torch.manual_seed(0)
    with torch.device(DEV):  # as bench/common.py makes them: bf16 weights, f32 RoPE frequencies
        m = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).eval()
    ids = torch.randint(0, cfg.vocab_size, (1, 32), device=DEV)
    with torch.no_grad():
        hb = m(ids).logits[0].float()
        m.float()  # after the bf16 run: .to(bfloat16) would round the f32 RoPE frequencies too
        ref = m(ids).logits[0].float()
        # The same f32 forward with transformers' eager attention instead of sdpa: only the
        # order of f32 sums differs, so this is how far float rounding alone moves the logits.
        m.config._attn_implementation = "eager"
        f32_eager = m(ids).logits[0].float()
    sd = {k: v for k, v in m.state_dict().items()}
    L, H, KV, D = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads
    D = getattr(cfg, "head_dim", None) or D
    theta = (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta", 1e6 if name.startswith("qwen") else 5e5)
    inv = 1.0 / (theta ** (torch.arange(0, D, 2, device=DEV).float() / D))
    pos = torch.arange(32, device=DEV).float()
    ang = pos[:, None] * inv[None]
    cos, sin = ang.cos(), ang.sin()
    r = lambda x: x.to(torch.bfloat16).float()
    def norm(x, w, eps=cfg.rms_norm_eps):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w
    def rope(x):  # [T, heads, D]
        a, b = x[..., : D // 2], x[..., D // 2 :]
        c, s = cos[:, None], sin[:, None]
        return torch.cat([a * c - b * s, b * c + a * s], -1)
    def run(f32):
        """f32: the set of activations kept in f32 (the rest rounded to bf16 as llmc stores them):
        x normed GEMV inputs, q query after RoPE, kv K/V cache, a attention output, s SiLU*up, h residual."""
        rx, rq, rkv, ra, rs, rh = [(lambda t: t) if c in f32 else r for c in ("x", "q", "kv", "a", "s", "h")]

        pre = "model."
        h = sd[pre + "embed_tokens.weight"][ids[0]]
        for l in range(L):
            p = f"{pre}layers.{l}."
            x = rx(norm(h, sd[p + "input_layernorm.weight"]))
            lin = lambda n, x: x @ sd[p + n + ".weight"].T + (sd[p + n + ".bias"] if p + n + ".bias" in sd else 0)
            q = rq(rope(lin("self_attn.q_proj", x).view(32, H, D)))
            k = rkv(rope(lin("self_attn.k_proj", x).view(32, KV, D)))
            v = rkv(lin("self_attn.v_proj", x).view(32, KV, D))
            k = k.repeat_interleave(H // KV, 1); v = v.repeat_interleave(H // KV, 1)
            s = torch.einsum("thd,uhd->htu", q, k) / math.sqrt(D)
            s = s + torch.triu(torch.full((32, 32), -float("inf"), device=DEV), 1)
            a = ra(torch.einsum("htu,uhd->thd", s.softmax(-1), v).reshape(32, H * D))
            h = h + a @ sd[p + "self_attn.o_proj.weight"].T
            h = rh(h)
            x = rx(norm(h, sd[p + "post_attention_layernorm.weight"]))
            g, u = x @ sd[p + "mlp.gate_proj.weight"].T, x @ sd[p + "mlp.up_proj.weight"].T
            h = h + rs(torch.nn.functional.silu(g) * u) @ sd[p + "mlp.down_proj.weight"].T
            h = rh(h)
        x = rx(norm(h, sd[pre + "norm.weight"]))
        return x @ sd["lm_head.weight" if "lm_head.weight" in sd else pre + "embed_tokens.weight"].T
    err = lambda a: ((a - ref).norm(dim=-1) / ref.norm(dim=-1))
    with torch.no_grad():
        variants = [("hf f32, eager attention", f32_eager), ("hf bf16", hb)] + [(f"emulated llmc, f32: {','.join(v) or 'none'}", v) for v in VARIANTS]
        for label, v in variants:
            e = err(v if isinstance(v, torch.Tensor) else run(v))
            print(f"{name}: {label:30s} rel err last {e[-1].item():.2e} max {e.max().item():.2e} median {e.median().item():.2e}")
    del m, sd; torch.cuda.empty_cache() if DEV == "cuda" else None
