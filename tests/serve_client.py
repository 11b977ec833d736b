"""Clients of a running `llmc serve`, driven by tests/serve.rs: the real `openai` package for the
API, and plain http.client for requests no well-behaved client sends.

    python3 tests/serve_client.py CASE BASE_URL MODEL [ARGS...]

Each case asserts what it checks and exits non-zero with the reason on the first failure.
"""

import http.client
import json
import socket
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import openai


def connect(base):
    # No retries: a 429 or a failure must reach the test, not be retried away.
    return openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=120)


def complete(c, model, prompt, **kw):
    r = c.completions.create(model=model, prompt=prompt, **kw)
    return r.choices[0].text, r.choices[0].finish_reason, r.usage


def chat(c, model, messages, **kw):
    r = c.chat.completions.create(model=model, messages=messages, **kw)
    return r.choices[0].message.content, r.choices[0].finish_reason, r.usage


def stream_chat(c, model, messages, **kw):
    text, finish, usage = "", None, None
    for chunk in c.chat.completions.create(model=model, messages=messages, stream=True, stream_options={"include_usage": True}, **kw):
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    return text, finish, usage


def stream_complete(c, model, prompt, **kw):
    text, finish = "", None
    for chunk in c.completions.create(model=model, prompt=prompt, stream=True, **kw):
        for choice in chunk.choices:
            text += choice.text
            finish = choice.finish_reason or finish
    return text, finish


def user(text):
    return [{"role": "user", "content": text}]


def basics(base, model):
    """Chat and completions, streamed and not; seeds; stop strings; logprobs; usage."""
    c = connect(base)
    assert [m.id for m in c.models.list().data] == [model]
    text, finish, usage = chat(c, model, user("abc"), max_tokens=12, temperature=0)
    assert finish == "length" and usage.completion_tokens == 12 and usage.prompt_tokens > 0, (finish, usage)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    streamed, s_finish, s_usage = stream_chat(c, model, user("abc"), max_tokens=12, temperature=0)
    assert (streamed, s_finish) == (text, finish), (streamed, text)
    assert s_usage.completion_tokens == 12 and s_usage.prompt_tokens == usage.prompt_tokens, s_usage

    text, finish, _ = complete(c, model, "Once upon a time", max_tokens=40, temperature=1.0, seed=7)
    again, _, _ = complete(c, model, "Once upon a time", max_tokens=40, temperature=1.0, seed=7)
    assert again == text, "the same seed draws the same tokens"
    streamed, _ = stream_complete(c, model, "Once upon a time", max_tokens=40, temperature=1.0, seed=7)
    assert streamed == text, (streamed, text)
    others = {complete(c, model, "Once upon a time", max_tokens=40, temperature=1.0, seed=s)[0] for s in (8, 9, 10)}
    assert others != {text}, "other seeds draw other tokens"
    top_k, _, _ = complete(c, model, "Once upon a time", max_tokens=40, temperature=1.0, seed=7, top_p=0.5, extra_body={"top_k": 3})
    assert top_k != text, "top_k and top_p change the draw"

    # A stop string from the middle of that answer: the answer ends just before it.
    printable = [i for i in range(len(text) // 3, len(text) - 1) if text[i].isprintable() and text[i] != "\ufffd"]
    assert printable, f"no printable character in {text!r}"
    stop = text[printable[0]]
    cut = text[: text.index(stop)]
    for stream in (False, True):
        if stream:
            got, finish = stream_complete(c, model, "Once upon a time", max_tokens=40, temperature=1.0, seed=7, stop=[stop, "never seen"])
        else:
            got, finish, _ = complete(c, model, "Once upon a time", max_tokens=40, temperature=1.0, seed=7, stop=stop)
        assert (got, finish) == (cut, "stop"), (stream, got, cut, finish)

    r = c.chat.completions.create(model=model, messages=user("abc"), max_tokens=5, temperature=0, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == 5, content
    for t in content:
        assert t.logprob <= 0 and len(t.top_logprobs) == 3, t
        assert t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob >= t.top_logprobs[2].logprob
        # Greedy: the chosen token is the most likely one.
        assert abs(t.logprob - t.top_logprobs[0].logprob) < 1e-6, t
    r = c.completions.create(model=model, prompt="abc", max_tokens=4, temperature=0, logprobs=2)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 4, lp
    assert all(len(top) <= 2 for top in lp.top_logprobs), lp


def equals_run(base, model, expected_json):
    """Greedy answers equal `llmc run`'s on the same prompts (tests/serve.rs ran it)."""
    c = connect(base)
    for case in json.loads(expected_json):
        if case["chat"]:
            got, _, _ = chat(c, model, user(case["prompt"]), max_tokens=case["max_tokens"], temperature=0)
            streamed, _, _ = stream_chat(c, model, user(case["prompt"]), max_tokens=case["max_tokens"], temperature=0)
        else:
            got, _, _ = complete(c, model, case["prompt"], max_tokens=case["max_tokens"], temperature=0)
            streamed, _ = stream_complete(c, model, case["prompt"], max_tokens=case["max_tokens"], temperature=0)
        assert got == streamed == case["text"], (case, got, streamed)


def concurrency(base, model, queue):
    """`queue` concurrent clients are each answered in full, as when alone; past the queue's bound
    a request is answered 429 at once, and nothing hangs."""
    queue = int(queue)
    c = connect(base)
    prompts = [f"{i} {i * 7} abc" for i in range(queue)]

    def ask(i, prompt):
        kw = dict(max_tokens=24, temperature=0.0 if i % 2 else 0.9, seed=i)
        if i % 3 == 0:
            return stream_complete(c, model, prompt, **kw)
        text, finish, _ = complete(c, model, prompt, **kw)
        return text, finish

    serial = [ask(i, p) for i, p in enumerate(prompts)]
    barrier = threading.Barrier(queue)

    def together(i):
        barrier.wait()
        return ask(i, prompts[i])

    with ThreadPoolExecutor(queue) as pool:
        concurrent = list(pool.map(together, range(queue)))
    assert concurrent == serial, [(i, a, b) for i, (a, b) in enumerate(zip(concurrent, serial)) if a != b]

    # Long requests, more than the queue holds, sent at once: the first is still generating when
    # the last arrives, so exactly the surplus is refused.
    extra = 8
    barrier = threading.Barrier(queue + extra)

    def long_request(_):
        barrier.wait()
        start = time.time()
        try:
            _, finish, usage = complete(c, model, "abc", max_tokens=1500, temperature=0)
            assert finish == "length" and usage.completion_tokens == 1500, (finish, usage)
            return "ok", time.time() - start
        except openai.RateLimitError as e:
            assert "busy" in str(e) and f"--queue {queue}" in str(e), str(e)
            return "429", time.time() - start

    with ThreadPoolExecutor(queue + extra) as pool:
        results = list(pool.map(long_request, range(queue + extra)))
    outcomes = [r for r, _ in results]
    assert outcomes.count("ok") == queue and outcomes.count("429") == extra, outcomes
    slowest_refusal = max(t for r, t in results if r == "429")
    assert slowest_refusal < 1.0, f"a 429 took {slowest_refusal:.2f} s"


def disconnect(base, model):
    """A client that leaves mid-stream stops its generation: the next request starts at once."""
    c = connect(base)
    start = time.time()
    complete(c, model, "abc", max_tokens=3000, temperature=0)
    whole = time.time() - start
    stream = c.completions.create(model=model, prompt="abc", max_tokens=3000, temperature=0, stream=True)
    chunks = iter(stream)
    next(chunks)
    next(chunks)
    stream.close()
    start = time.time()
    _, finish, _ = complete(c, model, "xyz", max_tokens=1, temperature=0)
    after = time.time() - start
    assert finish == "length"
    print(f"3000 tokens take {whole:.3f} s; the request after a disconnect took {after:.3f} s")
    assert after < whole / 5, f"the next request waited {after:.3f} s (a whole answer takes {whole:.3f} s)"


def cache(base, model):
    """A chat's second turn prefills only its new tokens and answers as an uncached run does; a
    prompt that departs from the cache reuses only the common prefix."""
    c = connect(base)
    first = user("abc")
    text1, _, usage1 = chat(c, model, first, max_tokens=8, temperature=0)
    assert usage1.prompt_tokens_details.cached_tokens == 0, usage1
    second = first + [{"role": "assistant", "content": text1}, {"role": "user", "content": "more"}]
    text2, _, usage2 = chat(c, model, second, max_tokens=8, temperature=0)
    # Every token fed in turn 1 is reused: its prompt and its answer but the last token chosen,
    # which was never fed.
    assert usage2.prompt_tokens_details.cached_tokens == usage1.prompt_tokens + usage1.completion_tokens - 1, (usage1, usage2)
    # Evict the conversation, then ask the second turn again: uncached, the same answer.
    complete(c, model, [9, 8, 7], max_tokens=2, temperature=0)
    uncached, _, usage3 = chat(c, model, second, max_tokens=8, temperature=0)
    assert usage3.prompt_tokens_details.cached_tokens < usage1.prompt_tokens, usage3
    assert uncached == text2, (uncached, text2)
    # Token-id prompts show the invalidation exactly: three tokens shared, then a difference.
    complete(c, model, [5, 6, 7, 8, 9, 10], max_tokens=2, temperature=0)
    _, _, usage = complete(c, model, [5, 6, 7, 99, 9, 10], max_tokens=2, temperature=0)
    assert usage.prompt_tokens_details.cached_tokens == 3, usage


def raw(base, method, path, body=b"", headers=None):
    """(status, parsed JSON or text) of a request as a misbehaving client sends it."""
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data.decode(errors="replace")


def bad_requests(base, model):
    """Every bad request is answered with a 4xx and OpenAI's error object; the server goes on."""
    too_long = json.dumps({"model": model, "prompt": [1] * 5000})
    ok = {"model": model, "prompt": "abc", "max_tokens": 2}
    cases = [
        ("/v1/completions", b'{"model": "x", "prompt": ', 400, "not valid JSON"),
        ("/v1/completions", b'{"model": "x"} trailing', 400, "not valid JSON"),
        ("/v1/completions", b"[1, 2]", 400, "must be a JSON object"),
        ("/v1/completions", b'{"prompt": "abc"}', 400, "missing field `model`"),
        ("/v1/completions", json.dumps({**ok, "max_tokens": "ten"}).encode(), 400, "invalid `max_tokens`"),
        ("/v1/completions", json.dumps({**ok, "temperature": [1]}).encode(), 400, "invalid `temperature`"),
        ("/v1/chat/completions", json.dumps({"model": model, "messages": "hi"}).encode(), 400, "invalid `messages`"),
        ("/v1/chat/completions", json.dumps({"model": model}).encode(), 400, "`messages` is required"),
        ("/v1/completions", json.dumps({"model": model}).encode(), 400, "`prompt` is required"),
        ("/v1/completions", json.dumps({**ok, "prompt": ""}).encode(), 400, "the prompt is empty"),
        ("/v1/completions", json.dumps({**ok, "model": "gpt-4"}).encode(), 404, "does not exist"),
        ("/v1/completions", too_long.encode(), 400, "context holds"),
        ("/v1/completions", json.dumps({**ok, "max_tokens": 100000}).encode(), 400, "does not fit"),
        ("/v1/completions", json.dumps({**ok, "max_tokens": 0}).encode(), 400, "at least 1"),
        ("/v1/completions", json.dumps({**ok, "prompt": [1, 1 << 30]}).encode(), 400, "outside the vocabulary"),
        ("/v1/completions", json.dumps({**ok, "temperature": 3}).encode(), 400, "between 0 and 2"),
        ("/v1/completions", json.dumps({**ok, "top_p": 0}).encode(), 400, "top_p"),
        ("/v1/completions", json.dumps({**ok, "n": 2}).encode(), 400, "n = 1"),
        ("/v1/completions", json.dumps({**ok, "stop": ["a", "b", "c", "d", "e"]}).encode(), 400, "at most 4"),
        ("/v1/completions", json.dumps({**ok, "logprobs": 6}).encode(), 400, "at most 5"),
        ("/v1/chat/completions", json.dumps({"model": model, "messages": user("hi"), "logprobs": True, "top_logprobs": 9}).encode(), 400, "at most 5"),
        ("/v1/chat/completions", json.dumps({"model": model, "messages": user("hi"), "top_logprobs": 2}).encode(), 400, "needs logprobs"),
        ("/v1/completions", b'{"model": "\xff\xfe"}', 400, "not UTF-8"),
        ("/v1/nothing", b"{}", 404, "no such route"),
    ]
    for path, body, status, message in cases:
        got, answer = raw(base, "POST", path, body)
        assert got == status, (path, body[:80], got, answer)
        assert isinstance(answer, dict) and message in answer["error"]["message"], (body[:80], answer)
        assert set(answer["error"]) == {"message", "type", "param", "code"}, answer
    # A body over the limit is refused from its Content-Length, before it is read (a client that
    # went on sending it would race the server closing the connection).
    url = urllib.parse.urlparse(base)
    with socket.create_connection((url.hostname, url.port), timeout=60) as s:
        s.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {5 << 20}\r\n\r\n".encode())
        response = http.client.HTTPResponse(s)
        response.begin()
        answer = json.loads(response.read())
    assert response.status == 413 and "over the limit" in answer["error"]["message"], answer
    # greedy: a sampled token may be the end of text, which would end the answer early
    status, answer = raw(base, "POST", "/v1/completions", json.dumps({**ok, "temperature": 0}).encode())
    assert status == 200 and answer["choices"][0]["finish_reason"] == "length", answer
    status, answer = raw(base, "GET", "/health")
    assert status == 200 and answer["status"] == "ready", answer


if __name__ == "__main__":
    case, *args = sys.argv[1:]
    {"basics": basics, "equals_run": equals_run, "concurrency": concurrency, "disconnect": disconnect, "cache": cache, "bad_requests": bad_requests}[case](*args)
    print(f"{case}: ok")
