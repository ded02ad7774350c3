#!/usr/bin/env python3
"""Streams: memory with many open streams, idle memory, per-chunk relay cost, TTFC overhead.

Starts the mock provider and `infron serve` (release builds) on a fresh database, creates an
account and key with the CLI, then:

1. idle: resident memory of the gateway after start and after a short warm-up;
2. time to first chunk: STREAMS_TTFC sequential streams (no provider delay) straight to the mock
   and through Infron; the difference is what the gateway adds;
3. open streams: N concurrent streams (default 10,000) from a slow provider (one word every
   CHUNK_DELAY_MS), all held open; peak resident memory of the gateway while they are, and the
   gateway's CPU time per relayed chunk over a window at the plateau;
4. every stream read to its end, then: every one logged and charged once, `infron ledger verify`.

Prints a JSON summary on stdout. Usage: run.py (environment: STREAMS, CHUNK_DELAY_MS, WORDS,
STREAMS_TTFC, CARGO_TARGET_DIR).
"""

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

STREAMS = int(os.environ.get("STREAMS", "10000"))
CHUNK_DELAY_MS = int(os.environ.get("CHUNK_DELAY_MS", "2000"))
WORDS = int(os.environ.get("WORDS", "20"))
TTFC_N = int(os.environ.get("STREAMS_TTFC", "300"))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/infron/target"))
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
WORK = tempfile.mkdtemp(prefix="infron-streams-")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def rss_mib(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def psql(url, sql):
    return subprocess.run(["psql", url, "-qtAc", sql], capture_output=True, text=True,
                          check=True).stdout.strip()


def body(directive, stream=True):
    text = "Say hello [[mock:" + json.dumps(directive) + "]]"
    return json.dumps({"model": "bench/stream", "stream": True, "max_tokens": 100,
                       "messages": [{"role": "user", "content": text}]}).encode()


async def one_stream(port, path, headers, payload, first=None, chunks=None, hold=None):
    """POSTs, reads the SSE to [DONE]; records time to first content chunk and counts chunks."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    start = time.perf_counter()
    head = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(payload)}\r\n{headers}connection: close\r\n\r\n").encode()
    writer.write(head + payload)
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        writer.close()
        return False
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    seen_first = False
    done = False
    while True:
        line = await reader.readline()
        if not line:
            break
        if line.startswith(b"data: "):
            data = line[6:].strip()
            if data == b"[DONE]":
                done = True
                break
            if b'"content":"' in data and b'"content":""' not in data:
                if not seen_first:
                    seen_first = True
                    if first is not None:
                        first.append(time.perf_counter() - start)
                    if hold is not None:
                        hold.release()
                if chunks is not None:
                    chunks[0] += 1
    writer.close()
    return done


async def ttfc(port, path, headers, n):
    first = []
    payload = body({"chunks": 3})
    for _ in range(n):
        await one_stream(port, path, headers, payload, first=first)
    first.sort()
    return {"p50_ms": round(statistics.median(first) * 1000, 3),
            "p99_ms": round(first[int(len(first) * 0.99) - 1] * 1000, 3)}


async def many(gw, key, n):
    headers = f"authorization: Bearer {key}\r\n"
    payload = body({"reply": " ".join(["word"] * WORDS), "chunk_delay_ms": CHUNK_DELAY_MS,
                    "chunks": WORDS})
    opened = asyncio.Semaphore(0)
    chunks = [0]
    started = time.time()
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(
            one_stream(gw["port"], "/v1/chat/completions", headers, payload, chunks=chunks,
                       hold=opened)))
        if i % 200 == 199:
            await asyncio.sleep(0.05)
    for _ in range(n):
        await opened.acquire()
    open_s = time.time() - started
    log(f"[streams] {n} streams open after {open_s:.1f} s")
    # The plateau: every stream open, chunks flowing.
    peak = rss_mib(gw["pid"])
    c0, k0, t0 = cpu_seconds(gw["pid"]), chunks[0], time.time()
    await asyncio.sleep(min(10, CHUNK_DELAY_MS * WORDS / 1000 / 3))
    peak = max(peak, rss_mib(gw["pid"]))
    c1, k1, t1 = cpu_seconds(gw["pid"]), chunks[0], time.time()
    results = await asyncio.gather(*tasks)
    return {"streams": n, "completed": sum(1 for r in results if r), "open_s": round(open_s, 1),
            "peak_rss_mib": round(peak, 1),
            "plateau_chunks_per_s": round((k1 - k0) / (t1 - t0)),
            "cpu_us_per_chunk": round((c1 - c0) / max(1, k1 - k0) * 1e6, 1)}


def main():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    mock_bin = os.path.join(TARGET, "release", "infron-mock-provider")
    infron = os.path.join(TARGET, "release", "infron")
    mock_port, gw_port = free_port(), free_port()
    procs = []
    mock = subprocess.Popen([mock_bin, "--bind", f"127.0.0.1:{mock_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    procs.append(mock)
    wait_port(mock_port)
    db = f"infron_streams_{int(time.time())}"
    admin = "postgres://postgres@127.0.0.1:5432/postgres"
    psql(admin, f'CREATE DATABASE "{db}"')
    db_url = f"postgres://postgres@127.0.0.1:5432/{db}"
    catalog = os.path.join(WORK, "catalog.toml")
    with open(catalog, "w") as f:
        f.write(f'[[providers]]\nname = "mock"\nwire = "openai"\n'
                f'base_url = "http://127.0.0.1:{mock_port}/v1"\napi_key_env = "BENCH_MOCK_KEY"\n\n'
                f'[[models]]\nid = "bench/stream"\nname = "Bench"\ncontext_length = 128000\n'
                f'max_output_tokens = 16384\n[[models.endpoints]]\nprovider = "mock"\n'
                f'upstream_model = "mock-stream"\n'
                f'pricing = {{ prompt = "0.00000015", completion = "0.0000006" }}\n')
    env = dict(os.environ, DATABASE_URL=db_url, REDIS_URL="redis://127.0.0.1:6379",
               INFRON_REDIS_PREFIX=f"bench-{db}",
               INFRON_KEY_SECRET="bench-secret-0123456789abcdef0123456789abcdef",
               INFRON_BIND=f"127.0.0.1:{gw_port}", INFRON_CATALOG=catalog,
               INFRON_RESPONSE_CACHE="off", BENCH_MOCK_KEY="bench", RUST_LOG="warn",
               INFRON_STREAM_IDLE_TIMEOUT_SECS="120")
    run = lambda *a: subprocess.run([infron, *a], env=env, check=True, capture_output=True,
                                    text=True).stdout.strip()
    try:
        run("migrate")
        account = run("accounts", "create", "--name", "streams")
        key = run("keys", "create", "--account", account)
        run("credits", "grant", "--account", account, "--amount", "100000", "--reason", "bench")
        gw = subprocess.Popen([infron, "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(os.path.join(WORK, "infron.log"), "w"),
                              start_new_session=True)
        procs.append(gw)
        wait_port(gw_port)
        time.sleep(1)
        out = {"idle_rss_mib_at_start": round(rss_mib(gw.pid), 1)}
        direct = asyncio.run(ttfc(mock_port, "/v1/chat/completions", "", TTFC_N))
        through = asyncio.run(ttfc(gw_port, "/v1/chat/completions",
                                   f"authorization: Bearer {key}\r\n", TTFC_N))
        out["ttfc_direct"] = direct
        out["ttfc_infron"] = through
        out["ttfc_added_p50_ms"] = round(through["p50_ms"] - direct["p50_ms"], 3)
        out["ttfc_added_p99_ms"] = round(through["p99_ms"] - direct["p99_ms"], 3)
        time.sleep(3)
        out["idle_rss_mib_after_warmup"] = round(rss_mib(gw.pid), 1)
        out.update(asyncio.run(many({"port": gw_port, "pid": gw.pid}, key, STREAMS)))
        sent = STREAMS + TTFC_N
        deadline = time.time() + 120
        while time.time() < deadline:
            logged = int(psql(db_url, "SELECT count(*) FROM request_logs"))
            if logged >= sent:
                break
            time.sleep(0.2)
        out["logged"] = logged
        out["charged"] = int(psql(db_url, "SELECT count(*) FROM request_logs "
                                          "WHERE cost > 0 AND usage_txn_id IS NOT NULL"))
        out["duplicates"] = int(psql(db_url, "SELECT count(*) - count(DISTINCT id) FROM request_logs"))
        time.sleep(2)
        out["idle_rss_mib_after_streams"] = round(rss_mib(gw.pid), 1)
        v = subprocess.run([infron, "ledger", "verify"], env=env, capture_output=True, text=True)
        out["ledger_verify_ok"] = v.returncode == 0
        print(json.dumps(out, indent=2))
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=60)
            except Exception:
                pass
        subprocess.run(["psql", admin, "-qc", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'],
                       capture_output=True)


if __name__ == "__main__":
    main()
