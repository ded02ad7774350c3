"""Times the dashboard's pages for bench/pages/run.sh: signs the owner in over the API, then
fetches each page REQUESTS times in a row over one keep-alive connection (after WARMUP untimed
fetches) and reports p50 / p95 / p99 / max per page. Every answer must be 200 with the content
the page promises (a page that failed fast would otherwise look fast)."""

import html
import http.client
import json
import os
import re
import statistics
import subprocess
import time
import urllib.parse

BASE = os.environ["BASE"]
REQUESTS = int(os.environ["REQUESTS"])
WARMUP = int(os.environ["WARMUP"])
ACCOUNT = os.environ["ACCOUNT"]
DB = os.environ["DB"]
host, port = urllib.parse.urlparse(BASE).netloc.split(":")
conn = http.client.HTTPConnection(host, int(port), timeout=60)
cookie = ""


def request(method, path, body=None, headers=None):
    h = {"Origin": BASE, **(headers or {})}
    if cookie:
        h["Cookie"] = cookie
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
    except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
        # The server closed an idle keep-alive connection (during the set-up queries): connect
        # again, untimed, and send the request once more.
        conn.close()
        conn.connect()
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
    data = r.read()
    return r, data


def psql(sql):
    return subprocess.run(["psql", "-X", "-At", "-d", DB, "-c", sql], check=True,
                          capture_output=True, text=True).stdout.strip()


r, data = request("POST", "/api/v1/auth/signin",
                  json.dumps({"email": os.environ["EMAIL"], "password": os.environ["PASSWORD"]}),
                  {"Content-Type": "application/json"})
assert r.status == 200, (r.status, data)
cookie = r.getheader("Set-Cookie").split(";")[0]


def fetch(path, expect):
    if conn.sock is None:
        conn.connect()
    start = time.perf_counter()
    r, data = request("GET", path)
    took = (time.perf_counter() - start) * 1000
    text = data.decode("utf-8", "replace")
    assert r.status == 200, (path, r.status, text[:500])
    assert expect in text, (path, expect, text[:2000])
    return took, text


# Cursors deep in the measured tenant's log: follow "Older requests" 30 pages in.
def older(text):
    m = re.search(r'href="(/logs\?cursor=[^"]+)">Older requests', text)
    return html.unescape(m.group(1)) if m else None


_, first = fetch("/logs", "Older requests")
deep = first_older = older(first)
for _ in range(29):
    _, t = fetch(deep, "Older requests")
    deep = older(t)
key_hash = psql(f"SELECT encode(key_hash, 'hex') FROM api_keys WHERE account_id = '{ACCOUNT}' AND name = 'key 3'")
rare_key = psql(f"SELECT encode(key_hash, 'hex') FROM api_keys WHERE account_id = '{ACCOUNT}' "
                f"AND name = 'key {int(psql(f'SELECT count(*) FROM api_keys WHERE account_id = {chr(39)}{ACCOUNT}{chr(39)}')) - 1}'")
ids = psql(f"SELECT id FROM request_logs WHERE account_id = '{ACCOUNT}' "
           f"AND created_at > now() - interval '30 days' ORDER BY random() LIMIT {REQUESTS + WARMUP}").split()
week_ago = psql("SELECT (now() - interval '7 days')::date")
month_ago = psql("SELECT (now() - interval '30 days')::date")

pages = [
    ("Keys", ["/keys"], "key 0"),
    ("Credits", ["/credits"], "Usage per day"),
    ("Logs, newest", ["/logs"], "Older requests"),
    ("Logs, partial refresh (every 5 s)", ["/logs?partial=1"], "Older requests"),
    ("Logs, 2nd page", [first_older], "Older requests"),
    ("Logs, 31st page", [deep], "Older requests"),
    ("Logs, by key", [f"/logs?key={key_hash}"], "Older requests"),
    ("Logs, by the least used key", [f"/logs?key={rare_key}"], "<table"),
    ("Logs, by model", ["/logs?model=vendor/model-7"], "Older requests"),
    ("Logs, failed only", ["/logs?status=error"], "Older requests"),
    ("Logs, one week (from/to)", [f"/logs?from={week_ago}&to={week_ago}"], "Older requests"),
    ("Log detail", [f"/logs/{i}" for i in ids], "Prompt tokens"),
    ("Activity, 24 hours by model", ["/activity?range=24h"], "Totals by model"),
    ("Activity, 48 hours by key", ["/activity?range=48h&group=key&metric=requests"], "Totals by key"),
    ("Activity, 7 days by provider", ["/activity?range=7d&group=provider&metric=tokens"], "Totals by provider"),
    ("Activity, 30 days by model", ["/activity?range=30d"], "Totals by model"),
    ("Activity, 90 days by key", ["/activity?range=90d&group=key"], "Totals by key"),
    ("Activity, custom 30 days", [f"/activity?from={month_ago}&to={week_ago}"], "Totals by model"),
    ("Activity CSV, 90 days by model", ["/activity.csv?range=90d"], "model,requests"),
    ("Models", ["/models"], "models"),
    ("Models, filtered", ["/models?q=mock&sort=price"], "models"),
    ("Settings", ["/settings"], "Alerts"),
    ("Members", ["/members"], "owner"),
]

results = []
for name, paths, expect in pages:
    for i in range(WARMUP):
        fetch(paths[i % len(paths)], expect)
    times = []
    for i in range(REQUESTS):
        took, _ = fetch(paths[(WARMUP + i) % len(paths)], expect)
        times.append(took)
    times.sort()
    q = statistics.quantiles(times, n=100, method="inclusive")
    row = (name, q[49], q[94], q[98], times[-1])
    results.append(row)
    print(f"{name:40s} p50 {row[1]:7.2f}  p95 {row[2]:7.2f}  p99 {row[3]:7.2f}  max {row[4]:7.2f} ms", flush=True)

worst = max(results, key=lambda r: r[2])
lines = [
    "# Dashboard page render times at scale",
    "",
    f"Measured by `bench/pages/run.sh` on {time.strftime('%Y-%m-%d', time.gmtime())}: the release binary, "
    f"Postgres and Redis on this 2-core machine, {int(os.environ['ROWS_TOTAL']):,} request logs in the "
    f"database ({os.environ['DB_SIZE']}), {int(os.environ['ROWS_HEAVY']):,} of them the measured tenant's "
    f"({int(os.environ['ROWS_DAY']):,} in its last 24 hours), with "
    f"{int(os.environ['USAGE_TXNS']):,} usage transactions in the ledger (one per charged request); "
    + (f"loaded in {os.environ['LOAD_SECS']} s. " if os.environ["LOAD_SECS"] else "loaded by an earlier run. ") +
    f"Each page fetched {REQUESTS} times in a row over one keep-alive connection after {WARMUP} "
    "untimed fetches, signed in as the tenant's owner; times are what the client on the same machine "
    "saw (server time plus one loopback round trip), in milliseconds.",
    "",
    "| page | p50 | p95 | p99 | max |",
    "|---|---:|---:|---:|---:|",
]
lines += [f"| {n} | {a:.1f} | {b:.1f} | {c:.1f} | {d:.1f} |" for n, a, b, c, d in results]
lines += ["", f"Slowest at p95: {worst[0]} ({worst[2]:.1f} ms); budget 50 ms.", ""]
with open(os.environ["OUT"], "w") as f:
    f.write("\n".join(lines))
print(f"\nwrote {os.environ['OUT']}")
