#!/usr/bin/env python3
"""Measures a running `llmc serve` from the client's side, with the standard library only (the
GPU machine has python3 but no pip):

1. streamed decode speed: a 32-token prompt, greedy, EOS ignored (as `llmc bench` runs it),
   streamed; tok/s from the first text chunk to the last. With --llmc and --plan it first runs
   `llmc bench PLAN --prompt-len 32 --gen N --json` (start the server after it, or on another
   GPU) and reports the streamed speed as a share of it (the target: within 3%).
2. time to first token of a chat's second turn, with the first turn in the prompt cache and
   without (the cache evicted by an unrelated request first).

    python3 bench/serve_bench.py http://127.0.0.1:8080 [--gen 512] [--runs 3] [--llmc target/release/llmc --plan coder-sm_90.plan]

Prints one line per measurement and, last, one JSON object.
"""

import argparse
import http.client
import json
import subprocess
import time
import urllib.parse


def post(base, path, body):
    """Yields (seconds since the request was sent, event data) for each server-sent event, or once
    for a JSON response."""
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    start = time.perf_counter()
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    if r.status != 200:
        raise SystemExit(f"{path}: HTTP {r.status}: {r.read().decode(errors='replace')}")
    if not body.get("stream"):
        yield time.perf_counter() - start, json.loads(r.read())
        return
    for line in r:
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        data = line[len(b"data: "):]
        if data == b"[DONE]":
            break
        yield time.perf_counter() - start, json.loads(data)
    conn.close()


def model_info(base):
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.request("GET", "/v1/models")
    return json.loads(conn.getresponse().read())["data"][0]


def streamed_decode(base, model, vocab, gen):
    """(tok/s between the first and the last text chunk, time to the first chunk in ms)."""
    prompt = [(i * 7919 + 13) % vocab for i in range(32)]
    body = {"model": model, "prompt": prompt, "max_tokens": gen, "temperature": 0, "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    first = last = None
    tokens = 0
    for t, event in post(base, "/v1/completions", body):
        if event.get("usage"):
            tokens = event["usage"]["completion_tokens"]
        for choice in event.get("choices", []):
            if choice.get("text"):
                first = t if first is None else first
                last = t
    if tokens != gen or first is None or last <= first:
        raise SystemExit(f"expected {gen} streamed tokens, got {tokens}")
    # The first text chunk carries the first token; the tokens after it took last - first.
    return (tokens - 1) / (last - first), first * 1e3


def chat_ttft(base, messages, model, max_tokens):
    """(ms to the first chunk, cached prompt tokens, the answer's text)."""
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    ttft, cached, text = None, None, ""
    for t, event in post(base, "/v1/chat/completions", body):
        ttft = t * 1e3 if ttft is None else ttft
        if event.get("usage"):
            cached = event["usage"]["prompt_tokens_details"]["cached_tokens"]
        for choice in event.get("choices", []):
            text += choice.get("delta", {}).get("content") or ""
    return ttft, cached, text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", help="the server, e.g. http://127.0.0.1:8080")
    ap.add_argument("--gen", type=int, default=512, help="tokens per streamed run (default 512)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each measurement; the best is reported")
    ap.add_argument("--llmc", help="the llmc binary, to run `llmc bench` for the comparison")
    ap.add_argument("--plan", help="the plan the server serves, for `llmc bench`")
    ap.add_argument("--turn-words", type=int, default=600, help="words in the first chat turn's message (default 600)")
    args = ap.parse_args()
    base = args.url.rstrip("/")
    report = {}

    if args.llmc and args.plan:
        out = subprocess.run([args.llmc, "bench", args.plan, "--prompt-len", "32", "--gen", str(args.gen), "--json"], check=True, capture_output=True, text=True)
        report["llmc_bench_tok_s"] = json.loads(out.stdout)["tok_s"]
        print(f"llmc bench: {report['llmc_bench_tok_s']:.1f} tok/s")

    info = model_info(base)
    model, vocab = info["id"], info["vocab_size"]
    streamed_decode(base, model, vocab, 16)  # warm-up
    runs = [streamed_decode(base, model, vocab, args.gen) for _ in range(args.runs)]
    report["streamed_tok_s"] = max(r[0] for r in runs)
    report["streamed_ttft_ms"] = min(r[1] for r in runs)
    line = f"streamed: {report['streamed_tok_s']:.1f} tok/s (best of {args.runs} x {args.gen} tokens), first chunk after {report['streamed_ttft_ms']:.1f} ms"
    if "llmc_bench_tok_s" in report:
        report["streamed_vs_bench"] = report["streamed_tok_s"] / report["llmc_bench_tok_s"]
        line += f"; {100 * report['streamed_vs_bench']:.1f}% of llmc bench"
    print(line)

    words = " ".join(f"word{i % 97}" for i in range(args.turn_words))
    first = [{"role": "user", "content": f"Summarize this list in one sentence: {words}"}]
    cached_ttft, uncached_ttft = [], []
    for _ in range(args.runs):
        chat_ttft(base, [{"role": "user", "content": "an unrelated question"}], model, 2)
        _, _, answer = chat_ttft(base, first, model, 64)
        second = first + [{"role": "assistant", "content": answer}, {"role": "user", "content": "Now say it in five words."}]
        ttft, cached, _ = chat_ttft(base, second, model, 1)
        cached_ttft.append(ttft)
        report["second_turn_cached_tokens"] = cached
        chat_ttft(base, [{"role": "user", "content": "an unrelated question"}], model, 2)
        ttft, uncached, _ = chat_ttft(base, second, model, 1)
        uncached_ttft.append(ttft)
        report["second_turn_uncached_cached_tokens"] = uncached
    report["second_turn_ttft_ms_cached"] = min(cached_ttft)
    report["second_turn_ttft_ms_uncached"] = min(uncached_ttft)
    print(
        f"second chat turn: first chunk after {report['second_turn_ttft_ms_cached']:.1f} ms with the first turn cached "
        f"({report['second_turn_cached_tokens']} tokens), {report['second_turn_ttft_ms_uncached']:.1f} ms without (best of {args.runs})"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
