#!/usr/bin/env python3
"""The transformers baselines for llmc's bench, on the same random Qwen2.5-1.5B shape (bf16):

  eager           the model as transformers runs it (default attention: sdpa), DynamicCache
  static_compile  StaticCache, the one-token decode step under torch.compile (mode
                  reduce-overhead: CUDA graphs; fullgraph=True, else fullgraph=False); the prompt
                  is prefilled eagerly into the static cache, as transformers' generate() does

For each: decode ms/token and tok/s over the tokens after the first (--gen 128 new tokens after
a --prompt-len 32 prompt; greedy argmax on the device, no host sampling), time to first token
(prefill + argmax) for prompts of 32 and 1024 tokens, and CUDA kernels per decode token counted
with torch.profiler. Median of --reps runs after a warm-up. Results go to --out as JSON, rewritten
after every phase, so a later failure (or a timeout) keeps what was measured; a failing
torch.compile is recorded and the script goes on.

  python3 bench/transformers_baseline.py --out OUT/baseline.json
  python3 bench/transformers_baseline.py --out /tmp/b.json --device cpu --layers 2 --long-prompt 64 --gen 8 \\
      --compile-backend aot_eager        # a quick CPU check of every code path
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import env_info, make_config, random_model, weight_bytes  # noqa: E402

SHAPE = "qwen2.5-1.5b"


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def copy_bandwidth():
    """Device-to-device copy bandwidth in bytes/s (read + written), as `llmc bench` measures it."""
    n = 512 << 20
    src = torch.empty(n, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(8):
        dst.copy_(src)
    torch.cuda.synchronize()
    return 2 * 8 * n / (time.perf_counter() - t)


def count_kernels(fn, steps, device):
    """CUDA kernels per call of fn, from a torch.profiler trace of `steps` calls."""
    if device != "cuda":
        return None  # no CUDA kernels to count
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fn()
        torch.cuda.synchronize()
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        prof.export_chrome_trace(f.name)
        events = json.load(open(f.name)).get("traceEvents", [])
    kernels = sum(1 for e in events if e.get("cat") == "kernel") / steps
    graphs = sum(1 for e in events if e.get("cat") == "cuda_runtime" and "GraphLaunch" in e.get("name", "")) / steps
    return kernels, graphs


class Runner:
    """Prefill + greedy decode with either cache; `step` may be a compiled function."""

    def __init__(self, model, device, static_len=None):
        self.model, self.device = model, device
        self.cache = None
        if static_len:
            from transformers import StaticCache

            self.cache = StaticCache(config=model.config, max_cache_len=static_len)
            self.positions = torch.arange(static_len, device=device)
        self.step = self.decode_step
        self.compiled = False

    @torch.no_grad()
    def prefill(self, ids):
        if self.cache is not None:
            self.cache.reset()
            out = self.model(input_ids=ids, past_key_values=self.cache, cache_position=self.positions[: ids.shape[1]], use_cache=True)
        else:
            out = self.model(input_ids=ids, use_cache=True)
            self.past = out.past_key_values
        return out.logits[:, -1].argmax(-1, keepdim=True)

    @torch.no_grad()
    def decode_step(self, tok, pos):
        if self.cache is not None:
            out = self.model(input_ids=tok, past_key_values=self.cache, cache_position=pos, position_ids=pos.unsqueeze(0), use_cache=True)
        else:
            out = self.model(input_ids=tok, past_key_values=self.past, use_cache=True)
        return out.logits[:, -1].argmax(-1, keepdim=True)

    def one(self, tok, p):
        pos = self.positions[p : p + 1] if self.cache is not None else None
        if self.compiled:
            torch.compiler.cudagraph_mark_step_begin()
            return self.step(tok, pos).clone()
        return self.step(tok, pos)

    def generate(self, ids, gen):
        """(ttft_s, decode_s for gen-1 tokens, tokens)."""
        sync(self.device)
        t0 = time.perf_counter()
        tok = self.prefill(ids)
        sync(self.device)
        t1 = time.perf_counter()
        toks = [tok]
        p = ids.shape[1]
        for _ in range(gen - 1):
            tok = self.one(tok, p)
            toks.append(tok)
            p += 1
        sync(self.device)
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, torch.cat(toks, dim=1)[0].tolist()


def measure(runner, args, prompt, long_prompt, res, label, out):
    """Fills res with ttft/decode figures; warm-up first."""
    runner.generate(prompt, min(args.gen, 8))
    decode, ttft32 = [], []
    for _ in range(args.reps):
        ttft, dec, toks = runner.generate(prompt, args.gen)
        decode.append(dec / (args.gen - 1))
        ttft32.append(ttft)
    res["ms_per_token"] = 1e3 * statistics.median(decode)
    res["tok_s"] = 1e3 / res["ms_per_token"]
    res["ms_per_token_runs"] = [1e3 * d for d in decode]
    res["ttft_ms"] = {str(prompt.shape[1]): 1e3 * statistics.median(ttft32)}
    res["tokens"] = toks[:16]
    write(out, res, label)
    runner.prefill(long_prompt)  # warm-up of the long prefill (sdpa picks other kernels)
    long = [runner.generate(long_prompt, 1)[0] for _ in range(args.reps)]
    res["ttft_ms"][str(long_prompt.shape[1])] = 1e3 * statistics.median(long)
    write(out, res, label)
    tok = runner.prefill(prompt)
    p = [prompt.shape[1]]

    def one():
        nonlocal tok
        tok = runner.one(tok, p[0])
        p[0] += 1

    try:
        counts = count_kernels(one, 4, args.device)
        if counts:  # a graph launch per token shows that CUDA graphs were not skipped
            res["kernels_per_token"], res["cuda_graph_launches_per_token"] = counts
    except Exception as e:  # counting is a nicety; the timings stand without it
        res["kernels_per_token_error"] = f"{type(e).__name__}: {e}"
    write(out, res, label)


RESULTS = {}


def write(out, res, label):
    RESULTS[label] = res
    Path(out).write_text(json.dumps(RESULTS, indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--layers", type=int, help="override num_hidden_layers (local CPU checks)")
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--long-prompt", type=int, default=1024)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"], help="transformers attention implementation")
    ap.add_argument("--compile-mode", default="reduce-overhead")
    ap.add_argument("--compile-backend", default="inductor", help="aot_eager for a quick CPU check of the code path")
    ap.add_argument("--skip-compile", action="store_true")
    args = ap.parse_args()

    cfg = make_config(SHAPE, args.layers)
    model = random_model(cfg, args.device, seed=0, attn=args.attn)
    meta = {"shape": SHAPE, "layers": cfg.num_hidden_layers, "dtype": "bfloat16", "attn": args.attn, "device": args.device,
            "prompt_len": args.prompt_len, "long_prompt": args.long_prompt, "gen": args.gen, "reps": args.reps,
            "weight_bytes": weight_bytes(model), **env_info()}
    if args.device == "cuda":
        meta["copy_bandwidth_gb_s"] = copy_bandwidth() / 1e9
    write(args.out, meta, "meta")
    g = torch.Generator().manual_seed(0)
    prompt = torch.randint(0, cfg.vocab_size, (1, args.prompt_len), generator=g).to(args.device)
    long_prompt = torch.randint(0, cfg.vocab_size, (1, args.long_prompt), generator=g).to(args.device)

    def roofline(res):
        if "copy_bandwidth_gb_s" in meta and "ms_per_token" in res:
            res["roofline_pct"] = 100 * (meta["weight_bytes"] / (meta["copy_bandwidth_gb_s"] * 1e9) * 1e3) / res["ms_per_token"]

    eager = {"what": f"transformers eager ({args.attn} attention), DynamicCache"}
    try:
        measure(Runner(model, args.device), args, prompt, long_prompt, eager, "eager", args.out)
        roofline(eager)
    except Exception as e:
        eager["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
    write(args.out, eager, "eager")
    print("eager:", json.dumps({k: v for k, v in eager.items() if k != "ms_per_token_runs"}), flush=True)

    if args.skip_compile:
        return
    static = {"what": f"transformers StaticCache + torch.compile(mode={args.compile_mode}, backend={args.compile_backend}) "
                      f"of the decode step; prefill eager ({args.attn})"}
    runner = Runner(model, args.device, static_len=args.long_prompt + args.gen)
    for fullgraph in (True, False):
        try:
            torch._dynamo.reset()
            runner.step = torch.compile(runner.decode_step, mode=args.compile_mode if args.compile_backend == "inductor" else None,
                                        backend=args.compile_backend, fullgraph=fullgraph)
            runner.compiled = True
            t = time.perf_counter()
            runner.generate(prompt, 4)  # compiles, then records the CUDA graph
            static["compile_s"] = time.perf_counter() - t
            static["fullgraph"] = fullgraph
            break
        except Exception as e:
            static[f"error_fullgraph_{fullgraph}"] = f"{type(e).__name__}: {str(e)[:2000]}"
            traceback.print_exc()
            runner.compiled = False
    write(args.out, static, "static_compile")
    if runner.compiled:
        try:
            measure(runner, args, prompt, long_prompt, static, "static_compile", args.out)
            roofline(static)
        except Exception as e:
            static["error"] = f"{type(e).__name__}: {str(e)[:2000]}"
            traceback.print_exc()
    write(args.out, static, "static_compile")
    print("static_compile:", json.dumps({k: v for k, v in static.items() if k != "ms_per_token_runs"}), flush=True)
    if "eager" in RESULTS and "tokens" in eager and "tokens" in static and eager["tokens"] != static["tokens"]:
        print("note: eager and compiled greedy tokens differ (bf16 rounding of different kernels)", flush=True)


if __name__ == "__main__":
    main()
