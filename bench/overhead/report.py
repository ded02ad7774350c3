"""Turns two wrk --latency outputs into a Markdown comparison (direct vs through Infron)."""
import re
import subprocess
import sys

def parse(path):
    text = open(path).read()
    out = {"text": text}
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

direct, gateway = parse(sys.argv[1]), parse(sys.argv[2])
charged, logged, rss_kb, duration, conns, workers = sys.argv[3:9]
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
print("# Gateway overhead (billing on)\n")
print(f"Machine: {cpu}, 2 cores shared by wrk, the mock provider, Infron, Postgres and Redis.")
print(f"wrk: 1 thread, {conns} connections, {duration} per run; Infron: {workers} worker(s), release build.\n")
print("| percentile | direct to mock (ms) | through Infron (ms) | overhead (ms) |")
print("|---|---|---|---|")
for pct in ("50", "75", "90", "99"):
    d, g = direct.get(pct), gateway.get(pct)
    if d is not None and g is not None:
        print(f"| p{pct} | {d:.3f} | {g:.3f} | {g - d:.3f} |")
print()
print(f"Throughput: direct {direct['rps']:.0f} req/s, through Infron {gateway['rps']:.0f} req/s.")
print(f"Gateway requests: {gateway['requests']} ({gateway['errors']} non-2xx); request logs written: {logged}; usage transactions posted: {charged}.")
print(f"Infron resident memory after the run: {int(rss_kb) / 1024:.1f} MiB.")
