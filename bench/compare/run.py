#!/usr/bin/env python3
"""Same upstream, same load generator, one run: direct, Portkey, LiteLLM and Infron.

The upstream is nginx answering a fixed OpenAI chat completion (upstream.json). For each system
the same two loads are sent with oha: as many requests as CONNECTIONS connections can push for
DURATION seconds (max throughput), then an open loop at RATE requests/s with latency correction
(coordinated omission corrected). The CPU time of every process involved — the system under
test, nginx, oha, and for Infron also Redis and Postgres — is read from /proc before and after
the max-throughput load, Infron's after its ledger writer has posted every request, and divided
by the requests served. run.sh installs the tools and calls this; results go to stdout as JSON
and, through report.py, to RESULTS.md.

Usage: run.py CACHE_DIR   (environment: DURATION, RATE, CONNECTIONS, SYSTEMS, CARGO_TARGET_DIR;
PERF=FILE also records a `perf` profile of the gateway process during Infron's max-throughput
load into FILE, for `perf report -i FILE`)
"""

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/infron/bench")
DURATION = int(os.environ.get("DURATION", "10"))
RATE = int(os.environ.get("RATE", "1000"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "32"))
SYSTEMS = os.environ.get("SYSTEMS", "direct portkey litellm infron").split()
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/infron/target"))
TICK = os.sysconf("SC_CLK_TCK")
OHA = shutil.which("oha") or os.path.join(CACHE, "cargo", "bin", "oha")

UPSTREAM_PORT, INFRON_PORT, LITELLM_PORT, PORTKEY_PORT = 18091, 18080, 18093, 18094
MODEL = "gpt-4o-mini"
PROMPT = [{"role": "user", "content": "Say hello in one short sentence."}]
WORK = tempfile.mkdtemp(prefix="infron-compare-")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu_seconds(pids):
    """utime + stime of the given processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total / TICK


def pids_of(name):
    out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def descendants(pid):
    found, frontier = [pid], [pid]
    while frontier:
        nxt = []
        for p in frontier:
            try:
                with open(f"/proc/{p}/task/{p}/children") as f:
                    nxt += [int(c) for c in f.read().split()]
            except FileNotFoundError:
                pass
        found += nxt
        frontier = nxt
    return found


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port} after {timeout} s")


def psql(url, sql):
    return subprocess.run(["psql", url, "-qtAc", sql], capture_output=True, text=True, check=True).stdout.strip()


class Proc:
    def __init__(self, args, name, env=None, cwd=None):
        self.log_path = os.path.join(WORK, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.p = subprocess.Popen(args, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                  start_new_session=True)

    def pids(self):
        return descendants(self.p.pid)

    def stop(self):
        try:
            os.killpg(self.p.pid, signal.SIGTERM)
            self.p.wait(timeout=90)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class System:
    """A system under test: where to send, what to count, how to finish."""
    name = ""
    model = MODEL
    headers = {}
    url = ""

    def parts(self):
        """Named groups of processes whose CPU is counted (besides nginx and oha)."""
        return {}

    def settle(self, answered):
        """Runs after a load; Infron waits for its ledger writer here."""
        return {}

    def stop(self):
        pass


class Direct(System):
    name = "direct"
    url = f"http://127.0.0.1:{UPSTREAM_PORT}/v1/chat/completions"


class LiteLLM(System):
    name = "litellm"

    def __init__(self):
        cfg = os.path.join(WORK, "litellm.yaml")
        with open(cfg, "w") as f:
            f.write(f"model_list:\n  - model_name: {MODEL}\n    litellm_params:\n"
                    f"      model: openai/{MODEL}\n      api_base: http://127.0.0.1:{UPSTREAM_PORT}/v1\n"
                    f"      api_key: bench\n")
        env = dict(os.environ, LITELLM_LOG="ERROR", LITELLM_TELEMETRY="False")
        self.proc = Proc([os.path.join(CACHE, "litellm", "bin", "litellm"), "--config", cfg, "--host", "127.0.0.1",
                          "--port", str(LITELLM_PORT), "--num_workers", "2"], "litellm", env=env)
        wait_port(LITELLM_PORT, 240)
        self.url = f"http://127.0.0.1:{LITELLM_PORT}/v1/chat/completions"
        self.headers = {"authorization": "Bearer bench"}

    def parts(self):
        return {"litellm": self.proc.pids}

    def stop(self):
        self.proc.stop()


class Portkey(System):
    name = "portkey"

    def __init__(self):
        root = os.path.join(CACHE, "portkey")
        entry = os.path.join(root, "node_modules", "@portkey-ai", "gateway", "build", "start-server.js")
        self.proc = Proc(["node", entry, "--port", str(PORTKEY_PORT)], "portkey", cwd=root)
        wait_port(PORTKEY_PORT, 60)
        self.url = f"http://127.0.0.1:{PORTKEY_PORT}/v1/chat/completions"
        self.headers = {"authorization": "Bearer bench", "x-portkey-provider": "openai",
                        "x-portkey-custom-host": f"http://127.0.0.1:{UPSTREAM_PORT}/v1"}

    def parts(self):
        return {"portkey": self.proc.pids}

    def stop(self):
        self.proc.stop()


class Infron(System):
    name = "infron"
    model = f"bench/{MODEL}"

    def __init__(self):
        self.binary = os.path.join(TARGET, "release", "infron")
        self.db = f"infron_bench_{int(time.time())}"
        self.admin = "postgres://postgres@127.0.0.1:5432/postgres"
        psql(self.admin, f'CREATE DATABASE "{self.db}"')
        catalog = os.path.join(WORK, "catalog.toml")
        with open(catalog, "w") as f:
            f.write(f'[[providers]]\nname = "upstream"\nwire = "openai"\n'
                    f'base_url = "http://127.0.0.1:{UPSTREAM_PORT}/v1"\napi_key_env = "BENCH_UPSTREAM_KEY"\n\n'
                    f'[[models]]\nid = "bench/{MODEL}"\nname = "Bench"\ncontext_length = 128000\n'
                    f'max_output_tokens = 16384\n[[models.endpoints]]\nprovider = "upstream"\n'
                    f'upstream_model = "{MODEL}"\n'
                    f'pricing = {{ prompt = "0.00000015", completion = "0.0000006" }}\n')
        self.db_url = f"postgres://postgres@127.0.0.1:5432/{self.db}"
        self.env = dict(os.environ, DATABASE_URL=self.db_url, REDIS_URL="redis://127.0.0.1:6379",
                        INFRON_REDIS_PREFIX=f"bench-{self.db}",
                        INFRON_KEY_SECRET="bench-secret-0123456789abcdef0123456789abcdef",
                        INFRON_BIND=f"127.0.0.1:{INFRON_PORT}", INFRON_CATALOG=catalog,
                        INFRON_RESPONSE_CACHE="off", BENCH_UPSTREAM_KEY="bench", RUST_LOG="warn")
        run = lambda *a: subprocess.run([self.binary, *a], env=self.env, check=True, capture_output=True,
                                        text=True).stdout.strip()
        run("migrate")
        account = run("accounts", "create", "--name", "bench")
        key = run("keys", "create", "--account", account)
        run("credits", "grant", "--account", account, "--amount", "1000000", "--reason", "bench")
        self.proc = Proc([self.binary, "serve"], "infron", env=self.env)
        wait_port(INFRON_PORT, 60)
        self.url = f"http://127.0.0.1:{INFRON_PORT}/v1/chat/completions"
        self.headers = {"authorization": f"Bearer {key}"}
        self.sent = 0

    def parts(self):
        return {"gateway": self.proc.pids, "redis": lambda: pids_of("redis-server"),
                "postgres": lambda: pids_of("postgres")}

    def settle(self, answered):
        self.sent += answered
        start = time.time()
        logged = 0
        while time.time() - start < 900:
            logged = int(psql(self.db_url, "SELECT count(*) FROM request_logs"))
            if logged >= self.sent:
                break
            time.sleep(0.02)
        drain = time.time() - start
        charged = int(psql(self.db_url, "SELECT count(*) FROM request_logs "
                                        "WHERE cost > 0 AND usage_txn_id IS NOT NULL"))
        return {"drain_s": round(drain, 2), "answered": self.sent, "logged": logged, "charged": charged}

    def verify(self):
        r = subprocess.run([self.binary, "ledger", "verify"], env=self.env, capture_output=True, text=True)
        return r.returncode == 0, r.stdout

    def stop(self):
        self.proc.stop()
        subprocess.run(["psql", self.admin, "-qc", f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)'],
                       capture_output=True)


def oha(system, extra, duration):
    body = json.dumps({"model": system.model, "messages": PROMPT, "max_tokens": 32})
    args = [OHA, "--no-tui", "--output-format", "json", "-m", "POST", "-T", "application/json", "-d", body,
            "-z", f"{duration}s"] + extra
    for k, v in system.headers.items():
        args += ["-H", f"{k}: {v}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(args + [system.url], capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = json.loads(out)
    s = result["summary"]
    codes = result.get("statusCodeDistribution", {})
    ok = int(codes.get("200", 0))
    other = sum(int(v) for k, v in codes.items() if k != "200")
    # Requests cut by the end of the load window are not errors of the system under test.
    errors = other + sum(int(v) for k, v in result.get("errorDistribution", {}).items() if "deadline" not in k)
    lat = result.get("latencyPercentiles", {})
    return {"rps": round(s.get("requestsPerSec", 0.0), 1), "ok": ok, "errors": errors,
            "p50_ms": round((lat.get("p50") or 0) * 1000, 3), "p99_ms": round((lat.get("p99") or 0) * 1000, 3),
            "oha_cpu_s": cpu}


def measure(cls):
    log(f"== {cls.name}")
    system = cls()
    try:
        oha(system, ["-c", "8"], 3)  # warm up pools, caches and the JIT of the peers
        if isinstance(system, Infron):
            system.settle(0)
            system.sent = int(psql(system.db_url, "SELECT count(*) FROM request_logs"))
        groups = dict(system.parts(), nginx=lambda: pids_of("nginx"))
        before = {k: cpu_seconds(f()) for k, f in groups.items()}
        t0 = time.time()
        perf = None
        if isinstance(system, Infron) and os.environ.get("PERF"):
            perf = subprocess.Popen(["perf", "record", "-q", "-F", "1999", "-o", os.environ["PERF"],
                                     "-p", ",".join(str(p) for p in system.proc.pids())],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = oha(system, ["-c", str(CONNECTIONS)], DURATION)
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        facts = system.settle(peak["ok"])
        elapsed = time.time() - t0
        after = {k: cpu_seconds(f()) for k, f in groups.items()}
        served = max(peak["ok"], 1)
        cpu_us = {k: round((after[k] - before[k]) / served * 1e6, 1) for k in groups}
        cpu_us["oha"] = round(peak.pop("oha_cpu_s") / served * 1e6, 1)
        open_loop = oha(system, ["-q", str(RATE), "--latency-correction", "-c", "64"], DURATION)
        open_loop.pop("oha_cpu_s")
        out = {"name": system.name, "max": peak, "open": open_loop, "cpu_us": cpu_us,
               "measured_s": round(elapsed, 2), **facts}
        if isinstance(system, Infron):
            after_open = system.settle(open_loop["ok"])
            ok, report = system.verify()
            out.update(after_open_loop=after_open, verify=ok, verify_report=report)
        return out
    finally:
        system.stop()


def main():
    conf = open(os.path.join(HERE, "nginx.conf.in")).read()
    body = open(os.path.join(HERE, "upstream.json")).read().strip().replace("'", "\\'")
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(WORK, d), exist_ok=True)
    with open(os.path.join(WORK, "nginx.conf"), "w") as f:
        f.write(conf.replace("@PORT@", str(UPSTREAM_PORT)).replace("@DIR@", WORK).replace("@BODY@", body))
    nginx = Proc(["nginx", "-c", os.path.join(WORK, "nginx.conf"), "-p", WORK], "nginx")
    wait_port(UPSTREAM_PORT)
    classes = {"direct": Direct, "litellm": LiteLLM, "portkey": Portkey, "infron": Infron}
    results = []
    try:
        for name in SYSTEMS:
            results.append(measure(classes[name]))
    finally:
        nginx.stop()
    json.dump({"duration_s": DURATION, "rate": RATE, "connections": CONNECTIONS, "cpus": os.cpu_count(),
               "results": results}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
