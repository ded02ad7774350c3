"""Turns wrk --latency outputs into a Markdown comparison (direct to the mock vs through Infron)."""
import re
import subprocess
import sys


def parse(path):
    text = open(path).read()
    out = {}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if m:
            v, unit = float(m.group(1)), m.group(2)
            out[pct] = v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in", text)
    out["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["errors"] = int(m.group(1)) if m else 0
    return out


conns, charged, logged, rss_kb, duration, workers, drain, verify = sys.argv[1:9]
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
print("# Gateway overhead (billing on)\n")
print(f"Machine: {cpu}; 2 cores shared by wrk, the mock provider, Infron, Postgres and Redis.")
print(f"Each run: wrk, 1 thread, {duration}; Infron: {workers} HTTP worker, release build, response cache off.\n")
total = 0
for c in ("1", conns):
    d, g = parse(f"/tmp/wrk-direct-{c}.txt"), parse(f"/tmp/wrk-gateway-{c}.txt")
    total += g["requests"]
    print(f"## {c} connection{'s' if c != '1' else ''}\n")
    print("| percentile | direct to mock (ms) | through Infron (ms) | added (ms) |")
    print("|---|---|---|---|")
    for pct in ("50", "75", "90", "99"):
        if pct in d and pct in g:
            print(f"| p{pct} | {d[pct]:.3f} | {g[pct]:.3f} | {g[pct] - d[pct]:.3f} |")
    print(f"\nThroughput: direct {d['rps']:.0f} req/s, through Infron {g['rps']:.0f} req/s; "
          f"{g['requests']} gateway requests, {g['errors']} non-2xx.\n")
print("## Billing\n")
print(f"Request logs written: {logged}; usage transactions posted: {charged} (measured requests: {total}, plus warm-up).")
print(f"Every settlement was in Postgres {drain} s after the load stopped; `infron ledger verify`: {verify}.")
print(f"Infron resident memory after the runs: {int(rss_kb) / 1024:.1f} MiB.")
