"""Both decode paths of llmc, measured in one run on random full-size models of the committed
shapes (plans/configs): one kernel per step in a CUDA graph (`--decode graph`) and one
persistent kernel (`--decode persistent`). For each shape: `llmc bench --prompt-len 32 --gen 128`
per path, and with --contexts the decode speed after prompts of those lengths.
Usage: python3 bench/decode_paths.py --llmc BIN --out DIR [--shapes qwen2.5-1.5b,...] [--contexts 4096,8192]
Writes DIR/decode_paths.json and DIR/decode_paths.md."""
import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHAPES, env_info, make_config, random_model, save_model  # noqa: E402


def sh(cmd, timeout):
    r = subprocess.run(list(map(str, cmd)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: exit {r.returncode}: {r.stderr.strip()[-800:]}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llmc", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default="/tmp/llmc-decode-paths")
    ap.add_argument("--shapes", default="qwen2.5-1.5b")
    ap.add_argument("--contexts", default="", help="comma-separated prompt lengths to decode after")
    ap.add_argument("--paths", default="graph,persistent")
    args = ap.parse_args()
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    contexts = [int(c) for c in args.contexts.split(",") if c]
    results = {"env": env_info(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "shapes": {}}
    for shape in args.shapes.split(","):
        model_dir = work / shape
        t = time.time()
        model = random_model(make_config(shape), "cuda")
        save_model(model, model_dir)
        del model
        gc.collect()
        torch.cuda.empty_cache()
        print(f"{shape}: random model written in {time.time() - t:.0f} s", flush=True)
        seq = max([4096] + [c + 256 for c in contexts])
        res = results["shapes"][shape] = {}
        for path in args.paths.split(","):
            plan = work / f"{shape}-{path}.plan"
            try:
                sh([args.llmc, "compile", model_dir, "-o", plan, "--decode", path, "--max-seq-len", seq], 600)
                runs = {}
                for prompt in [32] + contexts:
                    runs[str(prompt)] = json.loads(sh([args.llmc, "bench", plan, "--prompt-len", prompt, "--gen", 128, "--json"], 300))
                res[path] = runs
                r = runs["32"]
                print(f"{shape} {path}: {r['ms_per_token']:.3f} ms/token, {r['tok_s']:.1f} tok/s, {r['roofline_pct']:.1f}% of copy roofline, {r['read_roofline_pct']:.1f}% of read-only; "
                      + ", ".join(f"after {p}: {v['ms_per_token']:.3f} ms" for p, v in runs.items() if p != "32"), flush=True)
            except Exception as e:  # keep what the other paths measure
                res[path] = {"error": str(e)}
                print(f"{shape} {path}: {e}", flush=True)
            plan.unlink(missing_ok=True)
        subprocess.run(["rm", "-rf", str(model_dir)])
    (out / "decode_paths.json").write_text(json.dumps(results, indent=1))
    lines = [f"# llmc decode paths, {results['date']}, {results['env'].get('gpu', '?')}", "",
             "| shape | path | ms/token | tok/s | % of copy roofline | % of read-only roofline | " + " | ".join(f"ms/token after {c}" for c in contexts) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(contexts)]
    for shape, res in results["shapes"].items():
        for path, runs in res.items():
            if "error" in runs:
                lines.append(f"| {shape} | {path} | error: {runs['error'][:200]} |")
                continue
            r = runs["32"]
            lines.append(f"| {shape} | {path} | {r['ms_per_token']:.3f} | {r['tok_s']:.1f} | {r['roofline_pct']:.1f} | {r['read_roofline_pct']:.1f} | "
                         + " | ".join(f"{runs[str(c)]['ms_per_token']:.3f}" for c in contexts) + " |")
    (out / "decode_paths.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
