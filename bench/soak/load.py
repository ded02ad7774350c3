#!/usr/bin/env python3
"""Soak load: a steady request rate against the gateway with a mix of normal requests and
provider faults (requested from the mock provider with in-message directives), and fault
bursts every few minutes. Writes one JSON line per segment: requests, statuses, transport
errors, requests whose outcome was not what the scenario expects, latencies.

Standard library only. Usage:
  load.py BASE_URL API_KEY DURATION_SECS RATE_PER_SEC SEGMENT_SECS OUT_JSONL
"""

import http.client
import json
import random
import sys
import threading
import time
import urllib.parse

BASE, KEY = sys.argv[1], sys.argv[2]
DURATION, RATE, SEGMENT = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
OUT = sys.argv[6]
WORKERS = 16
BURST_EVERY, BURST_LEN = 300.0, 20.0  # a 20 s fault burst every 5 minutes

url = urllib.parse.urlparse(BASE)


def chat(model, directive=None, stream=False, fallback=None, text="Say hello in one sentence."):
    if directive is not None:
        text = f"{text} [[mock:{json.dumps(directive)}]]"
    body = {"model": model, "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream_options"] = {"include_usage": True}
    if fallback:
        body["models"] = fallback
    return "/v1/chat/completions", body


# (weight, name, request, statuses the scenario may end with, stream must end with [DONE])
SCENARIOS = [
    (55, "chat", lambda: chat("mock/gpt-4o-mini"), {200}, False),
    (12, "stream_anthropic", lambda: chat("mock/claude", stream=True), {200}, True),
    (5, "stream_gemini", lambda: chat("mock/gemini", stream=True), {200}, True),
    # A directive reaches every endpoint the request is tried on, so the fallback model fails
    # the same way: these exercise the fallback loop and end in 502.
    (4, "503_with_fallback", lambda: chat("mock/gpt-4o-mini", {"status": 503}, fallback=["mock/claude"]), {502}, False),
    (3, "429", lambda: chat("mock/gpt-4o-mini", {"status": 429, "retry_after": 1}), {429, 502}, False),
    (3, "400", lambda: chat("mock/gpt-4o-mini", {"status": 400, "error_message": "bad"}), {400}, False),
    (3, "reset_mid_stream", lambda: chat("mock/claude", {"fault": "reset_after_chunks", "after_chunks": 2, "reply": "one two three four five"}, stream=True), {200}, True),
    (2, "error_mid_stream", lambda: chat("mock/gpt-4o-mini", {"fault": "error_after_chunks", "after_chunks": 2, "reply": "one two three four five"}, stream=True), {200}, True),
    (2, "reset_before_headers", lambda: chat("mock/gpt-4o-mini", {"fault": "reset_before_headers"}, fallback=["mock/gemini"]), {502}, False),
    (2, "slow", lambda: chat("mock/gpt-4o-mini", {"latency_ms": 400}), {200}, False),
    (2, "json_for_stream", lambda: chat("mock/claude", {"json_for_stream": True}, stream=True), {200}, True),
    (2, "embeddings", lambda: ("/v1/embeddings", {"model": "mock/embed", "input": ["soak test"]}), {200}, False),
    (2, "client_gone", lambda: chat("mock/gpt-4o-mini", {"chunk_delay_ms": 200, "reply": "a b c d e f g h"}, stream=True), None, False),
    (3, "invalid", lambda: ("/v1/chat/completions", {"model": "mock/gpt-4o-mini", "messages": [{"role": "user", "content": None}]}), {400}, False),
]
BURST = [(1, "burst_503", lambda: chat("mock/gpt-4o-mini", {"status": 503}), {502}, False)]
TOTAL = sum(w for w, *_ in SCENARIOS)

lock = threading.Lock()
seg = None


def new_segment(start):
    return {"start": start, "sent": 0, "status": {}, "transport_errors": 0, "unexpected": {},
            "latencies_ms": []}


def record(status, unexpected, name, latency_ms):
    with lock:
        seg["sent"] += 1
        key = str(status)
        seg["status"][key] = seg["status"].get(key, 0) + 1
        if status == "transport":
            seg["transport_errors"] += 1
        if unexpected:
            seg["unexpected"][name] = seg["unexpected"].get(name, 0) + 1
        seg["latencies_ms"].append(latency_ms)


def pick(now):
    in_burst = (now % BURST_EVERY) > (BURST_EVERY - BURST_LEN)
    if in_burst and random.random() < 0.5:
        return BURST[0]
    r = random.uniform(0, TOTAL)
    for s in SCENARIOS:
        r -= s[0]
        if r <= 0:
            return s
    return SCENARIOS[0]


def one(conn_holder, started):
    _, name, make, ok, must_finish = pick(time.time() - started)
    path, body = make()
    data = json.dumps(body).encode()
    t0 = time.time()
    try:
        conn = conn_holder.get("c")
        if conn is None:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
            conn_holder["c"] = conn
        conn.request("POST", path, body=data, headers={
            "Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
        res = conn.getresponse()
        if name == "client_gone":
            res.read(64)  # a little of the stream, then hang up
            conn.close()
            conn_holder["c"] = None
            record(res.status, False, name, (time.time() - t0) * 1000)
            return
        payload = res.read()
        unexpected = ok is not None and res.status not in ok
        if must_finish and res.status == 200 and not payload.rstrip().endswith(b"data: [DONE]"):
            unexpected = True
        if res.getheader("connection", "").lower() == "close":
            conn.close()
            conn_holder["c"] = None
        record(res.status, unexpected, name, (time.time() - t0) * 1000)
    except Exception:  # noqa: BLE001 - any failure to get an answer is a transport error
        holder = conn_holder.get("c")
        if holder is not None:
            holder.close()
        conn_holder["c"] = None
        record("transport", True, name, (time.time() - t0) * 1000)


def worker(started, deadline, interval):
    holder = {}
    next_at = time.time() + random.uniform(0, interval)
    while True:
        now = time.time()
        if now >= deadline:
            return
        if now < next_at:
            time.sleep(min(next_at - now, 0.5))
            continue
        next_at += interval
        one(holder, started)


def main():
    global seg
    started = time.time()
    deadline = started + DURATION
    seg = new_segment(0.0)
    interval = WORKERS / RATE
    threads = [threading.Thread(target=worker, args=(started, deadline, interval), daemon=True)
               for _ in range(WORKERS)]
    for t in threads:
        t.start()
    with open(OUT, "w") as out:
        next_cut = started + SEGMENT
        while any(t.is_alive() for t in threads):
            time.sleep(0.2)
            if time.time() >= next_cut or not any(t.is_alive() for t in threads):
                with lock:
                    done, seg = seg, new_segment(time.time() - started)
                lat = sorted(done.pop("latencies_ms")) or [0]
                done["p50_ms"] = round(lat[len(lat) // 2], 1)
                done["p99_ms"] = round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1)
                done["start"] = round(done["start"], 1)
                out.write(json.dumps(done) + "\n")
                out.flush()
                next_cut += SEGMENT


if __name__ == "__main__":
    main()
