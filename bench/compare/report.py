#!/usr/bin/env python3
"""Renders run.py's JSON as bench/compare/RESULTS.md."""

import json
import sys
import time

data = json.load(open(sys.argv[1]))
rows = {r["name"]: r for r in data["results"]}
direct = rows.get("direct")
label = {"direct": "direct to the upstream (the limit)", "portkey": "Portkey gateway (Node)",
         "litellm": "LiteLLM proxy (2 workers)", "infron": "Infron"}

print(f"# Gateway comparison — {time.strftime('%Y-%m-%d', time.gmtime())}\n")
print(f"{data['cpus']} cores shared by everything; oha, {data['connections']} connections for the "
      f"throughput load, {data['rate']} req/s open loop (latency-corrected) for latency; "
      f"{data['duration_s']} s per load. Billing and request logs on for Infron, response cache off.\n")
print("| system | max req/s | errors | p50 / p99 at the open-loop rate | added over direct (p50 / p99) |")
print("|---|---|---|---|---|")
for name, r in rows.items():
    share = f" ({r['max']['rps'] / direct['max']['rps'] * 100:.1f}% of direct)" if direct and name != "direct" else ""
    held = "" if r["open"]["rps"] >= data["rate"] * 0.97 else f" (held only {r['open']['rps']:.0f} req/s)"
    added = "—"
    if direct and name != "direct":
        added = f"{r['open']['p50_ms'] - direct['open']['p50_ms']:.2f} / {r['open']['p99_ms'] - direct['open']['p99_ms']:.2f} ms"
    print(f"| {label.get(name, name)} | {r['max']['rps']:,.0f}{share} | {r['max']['errors'] + r['open']['errors']} | "
          f"{r['open']['p50_ms']:.2f} / {r['open']['p99_ms']:.2f} ms{held} | {added} |")

print("\nCPU per request at max throughput (µs; Infron's includes the ledger writer draining "
      "every request into Postgres):\n")
print("| system | process | µs per request |")
print("|---|---|---|")
for name, r in rows.items():
    for proc, us in r["cpu_us"].items():
        print(f"| {name} | {proc} | {us:,.1f} |")
if "infron" in rows:
    r = rows["infron"]
    total = sum(v for k, v in r["cpu_us"].items() if k in ("gateway", "redis", "postgres"))
    print(f"\nInfron gateway + Redis + Postgres: **{total:,.1f} µs per request**.")
    print(f"\nEvery answered request posted: {r['answered']:,} answered, {r['logged']:,} request logs, "
          f"{r['charged']:,} charged; the journal drained {r['drain_s']} s after the load stopped. "
          f"After the open-loop run too: {r['after_open_loop']['logged']:,} logs for "
          f"{r['after_open_loop']['answered']:,} answers. `infron ledger verify`: "
          f"{'clean' if r['verify'] else 'VIOLATIONS'}.")
    print("\n```\n" + r["verify_report"].strip() + "\n```")
