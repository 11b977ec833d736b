"""Shared by bench/verify_full_scale.py and bench/transformers_baseline.py: random full-size
models of the committed configs (plans/configs/*.json), built by transformers."""
import json
import shutil
from pathlib import Path

import torch
import transformers

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {
    "qwen2.5-1.5b": ROOT / "plans/configs/qwen2.5-1.5b.json",
    "qwen3-1.7b": ROOT / "plans/configs/qwen3-1.7b.json",
    "llama-3.2-3b": ROOT / "plans/configs/llama-3.2-3b.json",
    "qwen2-7b": ROOT / "plans/configs/qwen2-7b.json",
}
MODEL_TYPES = {"Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3", "LlamaForCausalLM": "llama"}
TOKENIZER = ROOT / "tests/fixtures/qwen2_tied"


def make_config(shape, layers=None):
    """The transformers config of a committed shape (transformers 5 spelling: rope_parameters)."""
    raw = json.loads(Path(SHAPES[shape]).read_text())
    arch = raw.pop("architectures")[0]
    theta = raw.pop("rope_theta")
    scaling = raw.pop("rope_scaling", None)
    raw["rope_parameters"] = dict(scaling, rope_theta=theta) if scaling else {"rope_type": "default", "rope_theta": theta}
    if layers:
        raw["num_hidden_layers"] = layers
    if raw.get("use_sliding_window") is False:
        raw.update(sliding_window=None, max_window_layers=raw["num_hidden_layers"])
    cls = transformers.AutoConfig.for_model(MODEL_TYPES[arch]).__class__
    cfg = cls(**raw, attention_dropout=0.0, use_cache=True)
    cfg.architectures = [arch]
    return cfg


@torch.no_grad()
def random_model(cfg, device, seed=0, attn="eager", dtype=torch.bfloat16):
    """A seeded random model: transformers' own init (N(0, 0.02) matrices), then norm weights
    1 + N(0, 0.1) and biases N(0, 0.05), so that every norm and bias path carries information."""
    torch.manual_seed(seed)
    with torch.device(device):  # initialising on the GPU takes seconds, not minutes
        model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=dtype, attn_implementation=attn)
    g = torch.Generator(device=device).manual_seed(seed + 1)
    for name, p in model.named_parameters():  # tied parameters appear once
        if name.endswith("norm.weight"):
            p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g, device=device, dtype=torch.float32))
        elif name.endswith(".bias"):
            p.copy_(0.05 * torch.randn(p.shape, generator=g, device=device, dtype=torch.float32))
    return model.eval()


def save_model(model, out):
    """config.json + safetensors + the fixture tokenizer (ids < 272; the model's vocab stays)."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out)
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(TOKENIZER / name, out / name)


def weight_bytes(model):
    return sum(p.numel() * p.element_size() for p in model.parameters())


def env_info():
    info = {"torch": torch.__version__, "transformers": transformers.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["sm"] = "sm_%d%d" % torch.cuda.get_device_capability(0)
    return info
