#!/usr/bin/env python3
"""Soak report: reads the samples and the load segments of a run and prints RESULTS.md,
ending with `Verdict: pass` or `Verdict: FAIL (reasons)`."""

import json
import statistics
import sys
from decimal import Decimal

work, secs, rate, profile, sent, logged, costs, spent, verify, drained = sys.argv[1:11]
sent, logged, secs = int(sent), int(logged), int(secs)
costs, spent = Decimal(costs), Decimal(spent)

samples = []
for line in open(f"{work}/samples.txt"):
    parts = line.split()
    if len(parts) == 6 and all(p.isdigit() for p in parts):
        samples.append(tuple(int(p) for p in parts))
segments = [json.loads(l) for l in open(f"{work}/segments.jsonl")]

problems = []


def quarter(rows, q):
    n = len(rows)
    return rows[n * q // 4: max(n * (q + 1) // 4, n * q // 4 + 1)]


rss = [s[1] for s in samples]
fds = [s[2] for s in samples]
conns = [s[3] for s in samples]
if len(samples) >= 8:
    early, late = statistics.median(quarter(rss, 1)), statistics.median(quarter(rss, 3))
    if late > max(early * 1.25, early + 16 * 1024):
        problems.append(f"resident memory grew from {early / 1024:.0f} to {late / 1024:.0f} MiB")
    # A leak grows all along; the Redis restart at half time may step the count once
    # (new connections), so the last quarter is compared with the third.
    if max(quarter(fds, 3)) > max(quarter(fds, 2)) + 8:
        problems.append("open descriptors grew in the last quarter")
    if max(quarter(conns, 3)) > max(quarter(conns, 2)) + 8:
        problems.append("open connections grew in the last quarter")
    if max(s[5] for s in quarter(samples, 3)) > 8:
        problems.append("sockets left in CLOSE-WAIT")
else:
    problems.append("too few samples to judge memory (run longer)")

total = {}
unexpected = {}
transport = 0
for s in segments:
    for k, v in s["status"].items():
        total[k] = total.get(k, 0) + v
    for k, v in s["unexpected"].items():
        unexpected[k] = unexpected.get(k, 0) + v
    transport += s["transport_errors"]
unexp_series = [sum(s["unexpected"].values()) for s in segments]
half = len(unexp_series) // 2
# The Redis restart falls in the middle; compare the first and last quarters.
if len(unexp_series) >= 4:
    first = sum(quarter(unexp_series, 0))
    last = sum(quarter(unexp_series, 3))
    if last > first + 5:
        problems.append(f"unexpected outcomes grew ({first} in the first quarter, {last} in the last)")
if logged < sent:
    problems.append(f"{sent - logged} requests sent but not logged")
if costs != spent:
    problems.append(f"balance fell by {spent} but the logged costs add up to {costs}")
if verify != "clean":
    problems.append("ledger verify found violations")
if drained != "yes":
    problems.append("the request log did not settle within 4 minutes")

mib = lambda kb: f"{kb / 1024:.1f}"
print("# Soak results\n")
print(f"- duration {secs} s at {rate} requests/s offered, {profile} build, "
      f"{len(segments)} segments, {len(samples)} samples every 10 s")
print(f"- requests sent {sent}, logged {logged}; charged ${costs} in request logs, "
      f"the tenant's balance fell by ${spent}; `infron ledger verify`: {verify}")
print(f"- statuses: {json.dumps(dict(sorted(total.items())))}; transport errors {transport}")
print(f"- unexpected outcomes by scenario: {json.dumps(dict(sorted(unexpected.items())))}")
if samples:
    print(f"- resident memory MiB: first {mib(rss[0])}, second-quarter median "
          f"{mib(statistics.median(quarter(rss, 1)))}, last-quarter median "
          f"{mib(statistics.median(quarter(rss, 3)))}, max {mib(max(rss))}")
    print(f"- open descriptors: min {min(fds)}, max {max(fds)}, last {fds[-1]}; "
          f"established connections: max {max(conns)}, last {conns[-1]}; connections to "
          f"Redis: max {max(s[4] for s in samples)}, last {samples[-1][4]}")
print("\n| segment start (s) | sent | unexpected | transport | p50 ms | p99 ms |")
print("|---|---|---|---|---|---|")
for s in segments:
    print(f"| {s['start']} | {s['sent']} | {sum(s['unexpected'].values())} | "
          f"{s['transport_errors']} | {s['p50_ms']} | {s['p99_ms']} |")
print("\n| t (s) | RSS MiB | fds | client connections | Redis connections | CLOSE-WAIT |")
print("|---|---|---|---|---|---|")
step = max(1, len(samples) // 20)
for t, r, f, c, rc, cw in samples[::step]:
    print(f"| {t} | {mib(r)} | {f} | {c} | {rc} | {cw} |")
print()
print("Verdict: pass" if not problems else "Verdict: FAIL (" + "; ".join(problems) + ")")
