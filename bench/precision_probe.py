"""Precision probe (GPU machine, python3 with torch and transformers): how far from an f32 forward
over the same bf16 weights do llmc's bf16 stores put the logits, and how far would they be with
the residual stream kept in f32? Emulates llmc's decode graph in torch (normed inputs, q/k/v after
RoPE, attention output, SiLU*up and the residual rounded to bf16; f32 accumulation) on random
full-size Qwen2.5-1.5B and Llama-3.2-3B shapes (plain RoPE), 32 random tokens, and prints the
relative logit error ||got - f32|| / ||f32|| next to transformers' own bf16 run.
Usage: python3 bench/precision_probe.py"""
import math

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM, LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
def qwen():
    c = Qwen2Config(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                    num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True)
    return c, Qwen2ForCausalLM
def llama():
    c = LlamaConfig(vocab_size=128256, hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24,
                    num_key_value_heads=8, rope_theta=5e5, rms_norm_eps=1e-5, tie_word_embeddings=True, head_dim=128)
    return c, LlamaForCausalLM
for name, mk in [("qwen2.5-1.5b", qwen), ("llama-3.2-3b", llama)]:
    cfg, cls = mk()
    torch.manual_seed(0)
    with torch.device("cuda"):
        m = cls(cfg).to(torch.bfloat16).float().eval()
    ids = torch.randint(0, cfg.vocab_size, (1, 32), device="cuda")
    with torch.no_grad():
        ref = m(ids).logits[0].float()
        hb = m.to(torch.bfloat16)(ids).logits[0].float()
        m.float()
    sd = {k: v for k, v in m.state_dict().items()}
    L, H, KV, D = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads
    D = getattr(cfg, "head_dim", None) or D
    theta = (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta", 1e6 if name.startswith("qwen") else 5e5)
    inv = 1.0 / (theta ** (torch.arange(0, D, 2, device="cuda").float() / D))
    pos = torch.arange(32, device="cuda").float()
    ang = pos[:, None] * inv[None]
    cos, sin = ang.cos(), ang.sin()
    r = lambda x: x.to(torch.bfloat16).float()
    def norm(x, w, eps=cfg.rms_norm_eps):
        return r(x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w)
    def rope(x):  # [T, heads, D]
        a, b = x[..., : D // 2], x[..., D // 2 :]
        c, s = cos[:, None], sin[:, None]
        return torch.cat([a * c - b * s, b * c + a * s], -1)
    def run(f32_residual):
        pre = "model."
        h = sd[pre + "embed_tokens.weight"][ids[0]]
        for l in range(L):
            p = f"{pre}layers.{l}."
            x = norm(h, sd[p + "input_layernorm.weight"])
            lin = lambda n, x: x @ sd[p + n + ".weight"].T + (sd[p + n + ".bias"] if p + n + ".bias" in sd else 0)
            q = r(rope(lin("self_attn.q_proj", x).view(32, H, D)))
            k = r(rope(lin("self_attn.k_proj", x).view(32, KV, D)))
            v = r(lin("self_attn.v_proj", x).view(32, KV, D))
            k = k.repeat_interleave(H // KV, 1); v = v.repeat_interleave(H // KV, 1)
            s = torch.einsum("thd,uhd->htu", q, k) / math.sqrt(D)
            s = s + torch.triu(torch.full((32, 32), -float("inf"), device="cuda"), 1)
            a = r(torch.einsum("htu,uhd->thd", s.softmax(-1), v).reshape(32, H * D))
            h = h + a @ sd[p + "self_attn.o_proj.weight"].T
            h = h if f32_residual else r(h)
            x = norm(h, sd[p + "post_attention_layernorm.weight"])
            g, u = x @ sd[p + "mlp.gate_proj.weight"].T, x @ sd[p + "mlp.up_proj.weight"].T
            h = h + r(torch.nn.functional.silu(g) * u) @ sd[p + "mlp.down_proj.weight"].T
            h = h if f32_residual else r(h)
        x = norm(h, sd[pre + "norm.weight"])
        return x @ sd["lm_head.weight" if "lm_head.weight" in sd else pre + "embed_tokens.weight"].T
    err = lambda a: ((a - ref).norm(dim=-1) / ref.norm(dim=-1))
    with torch.no_grad():
        for label, out in [("hf bf16", hb), ("emulated llmc, bf16 residual", run(False)), ("emulated llmc, f32 residual", run(True))]:
            e = err(out)
            print(f"{name}: {label:30s} rel err last {e[-1].item():.2e} max {e.max().item():.2e} median {e.median().item():.2e}")
    del m, sd; torch.cuda.empty_cache()
