"""Side-by-side HTTP benchmark: a hyper floor, keygate's routes and a peer, on this machine.

Each server runs pinned to core 0 (`taskset -c 0`) and wrk loads it from core 1 (`taskset -c 1`,
`-t1 -c32`): a warm-up, then the measured run. Every row gets a fresh server. Rows:

  floor    cli/examples/floor.rs: hyper 1 answering 56 B of JSON, the floor for one request
  token    keygate GET /v1/auth/token (mint, EdDSA, embedded SQLite store)
  refresh  keygate GET /v1/auth/refresh, from a pool of live refresh tokens
  detail   keygate GET /v1/key/detail
  jwks     keygate GET /.well-known/jwks.json
  create   keygate POST /identity/v1/api-keys (SpaceONE create), each request signed once
  search   keygate POST /identity/v1/api-keys/search (SpaceONE search), a page of 10 of 100 keys
  peer     oidc-provider POST /token, client_credentials, EdDSA JWT (scripts/bench-peer.mjs)

The table gives req/s, p50 and p99 (wrk's), the ratio to the floor's req/s in the same run, the
count of non-2xx answers (wrk counts 4xx and 5xx; socket errors are added apart) and the server's
peak RSS (VmHWM). A row more than half of whose answers are errors is marked failed, and the run
exits 1. wrk's output, the Lua scripts and the servers' stderr stay in target/bench/run.

usage: scripts/bench [--keygate PATH] [--duration S] [--warmup S] [--connections N]
                     [--rows floor,token,...] [--out FILE]
scripts/bench installs wrk and the peer, then runs this file from the repository root.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "target", "bench")
PEER_DIR = os.path.join(BENCH_DIR, "peer")
RUN_DIR = os.path.join(BENCH_DIR, "run")
SERVER_CORE, LOAD_CORE = "0", "1"
ROWS = ["floor", "token", "refresh", "detail", "jwks", "create", "search", "peer"]
# A row more than half of whose answers are errors measured the errors, not the route.
MOST_ERRORS = 0.5
SEARCH_KEYS = 100
SEARCH_BODY = {"query": {"filter": [{"k": "state", "v": "ENABLED", "o": "eq"}], "page": {"limit": 10}}}
CREATE_PATH = "/identity/v1/api-keys"
CREATE_BODY = {"user_id": "bench", "scope": ["bench"], "max_total_usage": 1000}
# The signature window is 5 minutes either side; signed requests are spread over 4 of them.
SIGNATURE_WINDOW_MS = 240_000
PEER_CLIENT = ("bench", "bench-peer-client-secret-0123456789")


# --- wrk scripts ---------------------------------------------------------------------------------
# Every row's script ends by printing one JSON line that this file reads; `exhausted` counts the
# requests a dynamic script had to send without a fresh token or signature (they fail).
SUMMARY_LUA = r"""
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local e = summary.errors
  local exhausted = 0
  for _, thread in ipairs(threads) do
    exhausted = exhausted + (thread:get("exhausted") or 0)
  end
  io.write(string.format(
    'wrk-summary {"requests": %.0f, "duration_us": %.0f, "non_2xx": %.0f, "socket_errors": %.0f, '
      .. '"p50_us": %.0f, "p99_us": %.0f, "exhausted": %.0f}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), exhausted))
end
"""

# args: METHOD, BODY ("" for none), then "name: value" headers. The same request every time.
STATIC_LUA = r"""
function init(args)
  wrk.method = args[1]
  if args[2] ~= "" then wrk.body = args[2] end
  for i = 3, #args do
    local name, value = args[i]:match("^([^:]+): (.*)$")
    wrk.headers[name] = value
  end
end
"""

# args: a file of live access tokens, one a line. A token refreshes once: each request takes one
# out of the pool and each answer puts the token it carries back in.
REFRESH_LUA = r"""
local pool = {}
exhausted = 0

function init(args)
  for line in io.lines(args[1]) do pool[#pool + 1] = line end
end

function request()
  local token = table.remove(pool)
  if token == nil then
    exhausted = exhausted + 1
    token = "the.pool.is.empty"
  end
  return wrk.format("GET", "/v1/auth/refresh", { ["Authorization"] = "Bearer " .. token })
end

function response(status, headers, body)
  if status == 200 then
    local token = body:match('"access_token":"([^"]+)"')
    if token then pool[#pool + 1] = token end
  end
end
"""

# args: a file of "timestamp signature" lines (each signs one request: a write is accepted once
# per signature), the path, the access key and the JSON body. Past the last line it starts over,
# and the server refuses those replays.
CREATE_LUA = r"""
local signed = {}
local next_line = 1
local path, access_key, body
exhausted = 0

function init(args)
  for line in io.lines(args[1]) do signed[#signed + 1] = line end
  path, access_key, body = args[2], args[3], args[4]
end

function request()
  if next_line > #signed then
    next_line = 1
    exhausted = exhausted + 1
  end
  local timestamp, signature = signed[next_line]:match("^(%S+) (%S+)$")
  next_line = next_line + 1
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["x-ncp-apigw-timestamp"] = timestamp,
    ["x-ncp-iam-access-key"] = access_key,
    ["x-ncp-apigw-signature-v2"] = signature,
  }, body)
end
"""


class BenchError(Exception):
    pass


def check(condition, message):
    if not condition:
        raise BenchError(message)


# --- HTTP and signing for setup --------------------------------------------------------------------

def call(port, method, path, headers=None, body=None):
    """One request; returns (status, JSON body or the text when it is not JSON)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
    finally:
        connection.close()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


def jwt_header(token):
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class Admin:
    """Signs admin requests (NCP signature v2) with the credential `keygate serve` stored."""

    def __init__(self, data_dir):
        with open(os.path.join(data_dir, "credentials.json")) as file:
            credential = json.load(file)[0]
        self.access_key = credential["access_key"]
        self.secret = credential["secret_key"].encode()

    def signature(self, method, path, timestamp):
        text = f"{method} {path}\n{timestamp}\n{self.access_key}"
        return base64.b64encode(hmac.new(self.secret, text.encode(), hashlib.sha256).digest()).decode()

    def headers(self, method, path, timestamp=None):
        timestamp = str(timestamp or int(time.time() * 1000))
        return {
            "content-type": "application/json",
            "x-ncp-apigw-timestamp": timestamp,
            "x-ncp-iam-access-key": self.access_key,
            "x-ncp-apigw-signature-v2": self.signature(method, path, timestamp),
        }

    def create_key(self, port, body):
        # Each write needs its own signature: a new millisecond for every one.
        time.sleep(0.002)
        status, answer = call(port, "POST", CREATE_PATH, self.headers("POST", CREATE_PATH), json.dumps(body))
        check(status == 200 and "api_key" in answer, f"create answered {status}: {answer}")
        return answer


# --- servers -------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


RUNNING = []


class Server:
    """A server process pinned to SERVER_CORE, stopped by `stop` (`stop_all` stops any left)."""

    def __init__(self, name, argv, port, ready_path, env=None):
        self.name, self.port = name, port
        self.log_path = os.path.join(RUN_DIR, f"{name}.log")
        with open(self.log_path, "wb") as log:
            # stdout (keygate logs each request there) is discarded, as cheaply as it can be.
            self.process = subprocess.Popen(
                ["taskset", "-c", SERVER_CORE, *argv],
                stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=ROOT,
            )
        RUNNING.append(self)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise BenchError(f"{name} exited with {self.process.returncode}: {self.log()}")
            try:
                if call(port, "GET", ready_path)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"{name} did not answer GET {ready_path} within 60 s: {self.log()}")
            time.sleep(0.1)

    def log(self):
        with open(self.log_path, errors="replace") as file:
            return file.read()[-2000:]

    def peak_rss_mib(self):
        with open(f"/proc/{self.process.pid}/status") as file:
            for line in file:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return None

    def stop(self):
        if self in RUNNING:
            RUNNING.remove(self)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def stop_all():
    for server in list(RUNNING):
        server.stop()


def keygate_env():
    """The environment without keygate's own settings: each server uses its data directory."""
    return {name: value for name, value in os.environ.items() if not name.startswith("KEYGATE_")}


# What `keygate serve` allows one address by default (--max-connections-per-peer): wrk connects
# from one.
PER_PEER_DEFAULT = 256


def start_keygate(context, row):
    data_dir = os.path.join(RUN_DIR, f"{row}-data")
    shutil.rmtree(data_dir, ignore_errors=True)
    port = free_port()
    argv = [context.keygate, "serve", "--port", str(port), "--data-dir", data_dir]
    if context.connections > PER_PEER_DEFAULT:
        argv += ["--max-connections-per-peer", str(context.connections)]
    server = Server(f"keygate-{row}", argv, port, "/health", env=keygate_env())
    server.data_dir = data_dir
    return server


# --- rows ----------------------------------------------------------------------------------------
# Each row starts its server, checks once that its request succeeds, and returns the server and
# the load: (path, wrk script, script arguments for the warm-up, for the measured run).

def write_lines(name, lines):
    path = os.path.join(RUN_DIR, name)
    with open(path, "w") as file:
        file.writelines(f"{line}\n" for line in lines)
    return path


def static_load(path, method="GET", headers=(), body=""):
    arguments = [method, body, *(f"{name}: {value}" for name, value in headers)]
    return path, STATIC_LUA, arguments, arguments


def floor_row(context):
    port = free_port()
    server = Server("floor", [context.floor, str(port)], port, "/")
    status, body = call(port, "GET", "/")
    check(status == 200 and body["result"]["status"] == "ok", f"floor answered {status}: {body}")
    return server, static_load("/")


def bench_key(server, admin):
    """A registered key with the largest quota there is."""
    created = admin.create_key(server.port, {"user_id": "bench", "scope": ["bench"], "max_total_usage": 2**31 - 1})
    key = created["api_key"]
    status, body = call(server.port, "POST", "/v1/key/regist", {"content-type": "application/json"},
                        json.dumps({"key": key}))
    check(status == 200, f"regist answered {status}: {body}")
    return key


def mint(server, key):
    status, body = call(server.port, "GET", "/v1/auth/token", {"x-api-key": key})
    check(status == 200 and body["result"]["token_type"] == "Bearer", f"token answered {status}: {body}")
    token = body["result"]["access_token"]
    check(jwt_header(token)["alg"] == "EdDSA", f"the token is not EdDSA: {jwt_header(token)}")
    return token


def token_row(context):
    server = start_keygate(context, "token")
    key = bench_key(server, Admin(server.data_dir))
    mint(server, key)
    return server, static_load("/v1/auth/token", headers=[("x-api-key", key)])


def refresh_row(context):
    server = start_keygate(context, "refresh")
    key = bench_key(server, Admin(server.data_dir))
    status, body = call(server.port, "GET", "/v1/auth/refresh", {"authorization": f"Bearer {mint(server, key)}"})
    check(status == 200 and "access_token" in body["result"], f"refresh answered {status}: {body}")
    # Four live tokens per connection, for each run: a token is out of the pool only while its
    # refresh is in flight.
    size = 4 * context.connections
    warmup = write_lines("refresh-warmup.tokens", (mint(server, key) for _ in range(size)))
    measured = write_lines("refresh-measured.tokens", (mint(server, key) for _ in range(size)))
    return server, ("/v1/auth/refresh", REFRESH_LUA, [warmup], [measured])


def detail_row(context):
    server = start_keygate(context, "detail")
    key = bench_key(server, Admin(server.data_dir))
    status, body = call(server.port, "GET", "/v1/key/detail", {"x-api-key": key})
    check(status == 200 and "remaining_total_usage" in body["result"], f"detail answered {status}: {body}")
    return server, static_load("/v1/key/detail", headers=[("x-api-key", key)])


def jwks_row(context):
    server = start_keygate(context, "jwks")
    status, body = call(server.port, "GET", "/.well-known/jwks.json")
    check(status == 200 and body["keys"][0]["alg"] == "EdDSA", f"jwks answered {status}: {body}")
    return server, static_load("/.well-known/jwks.json")


def create_row(context):
    server = start_keygate(context, "create")
    admin = Admin(server.data_dir)
    body = json.dumps(CREATE_BODY)
    # One signed request per millisecond from 4 minutes ago on, enough for each run at
    # --max-create-rate: the warm-up's first, then the measured run's, none used twice.
    sizes = [math.ceil(seconds * context.max_create_rate) + context.connections
             for seconds in (context.warmup, context.duration)]
    check(sum(sizes) < 2 * SIGNATURE_WINDOW_MS,
          "--max-create-rate times the run's seconds is more signed requests than 8 minutes of milliseconds")
    start = int(time.time() * 1000) - SIGNATURE_WINDOW_MS
    status, answer = call(server.port, "POST", CREATE_PATH, admin.headers("POST", CREATE_PATH, start - 1), body)
    check(status == 200 and answer["api_key"].startswith("kg_"), f"create answered {status}: {answer}")
    files = []
    for name, first, size in (("warmup", start, sizes[0]), ("measured", start + sizes[0], sizes[1])):
        lines = (f"{t} {admin.signature('POST', CREATE_PATH, t)}" for t in range(first, first + size))
        files.append(write_lines(f"create-{name}.signed", lines))
    arguments = [[file, CREATE_PATH, admin.access_key, body] for file in files]
    return server, (CREATE_PATH, CREATE_LUA, *arguments)


def search_row(context):
    server = start_keygate(context, "search")
    admin = Admin(server.data_dir)
    for _ in range(SEARCH_KEYS):
        admin.create_key(server.port, CREATE_BODY)
    path = "/identity/v1/api-keys/search"
    headers = admin.headers("POST", path)  # a read: one signature may be repeated for 5 minutes
    body = json.dumps(SEARCH_BODY)
    status, answer = call(server.port, "POST", path, headers, body)
    check(status == 200 and answer["total_count"] == SEARCH_KEYS and len(answer["results"]) == 10,
          f"search answered {status}: {str(answer)[:500]}")
    return server, static_load(path, "POST", headers.items(), body)


def peer_row(context):
    port = free_port()
    client_id, secret = PEER_CLIENT
    argv = ["node", os.path.join(ROOT, "scripts", "bench-peer.mjs"), "--modules", PEER_DIR,
            "--port", str(port), "--client-id", client_id, "--client-secret", secret]
    server = Server("peer", argv, port, "/.well-known/openid-configuration",
                    env={**os.environ, "NODE_ENV": "production"})
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    headers = [("Authorization", f"Basic {basic}"), ("Content-Type", "application/x-www-form-urlencoded")]
    body = "grant_type=client_credentials&scope=bench"
    status, answer = call(port, "POST", "/token", dict(headers), body)
    check(status == 200 and answer.get("token_type") == "Bearer", f"peer answered {status}: {answer}")
    header = jwt_header(answer["access_token"])
    check((header["alg"], header["typ"]) == ("EdDSA", "at+jwt"), f"the peer's token header: {header}")
    return server, static_load("/token", "POST", headers, body)


def peer_version():
    with open(os.path.join(PEER_DIR, "node_modules", "oidc-provider", "package.json")) as file:
        return json.load(file)["version"]


LABELS = {
    "floor": "hyper floor: `GET` any path, 56 B of JSON",
    "token": "keygate `GET /v1/auth/token` (mint)",
    "refresh": "keygate `GET /v1/auth/refresh`",
    "detail": "keygate `GET /v1/key/detail`",
    "jwks": "keygate `GET /.well-known/jwks.json`",
    "create": "keygate `POST /identity/v1/api-keys` (create, signed)",
    "search": f"keygate `POST /identity/v1/api-keys/search` (10 of {SEARCH_KEYS}, signed)",
    "peer": "oidc-provider {version} `POST /token` (client_credentials)",
}
SETUPS = {
    "floor": floor_row, "token": token_row, "refresh": refresh_row, "detail": detail_row,
    "jwks": jwks_row, "create": create_row, "search": search_row, "peer": peer_row,
}


# --- load ----------------------------------------------------------------------------------------

def wrk(context, row, phase, port, path, lua, arguments, seconds):
    script = os.path.join(RUN_DIR, f"{row}.lua")
    with open(script, "w") as file:
        file.write(lua + SUMMARY_LUA)
    command = [
        "taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{context.connections}", f"-d{seconds}s",
        "--latency", "-s", script, f"http://127.0.0.1:{port}{path}", "--", *arguments,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    with open(os.path.join(RUN_DIR, f"{row}-{phase}.wrk.txt"), "w") as file:
        file.write(done.stdout + done.stderr)
    for line in done.stdout.splitlines():
        if line.startswith("wrk-summary "):
            return json.loads(line.removeprefix("wrk-summary "))
    raise BenchError(f"wrk printed no summary (exit {done.returncode}): {done.stdout[-1000:]}{done.stderr[-1000:]}")


def run_row(context, row):
    print(f"bench: {row}: setting up", flush=True)
    try:
        server, (path, lua, warmup_arguments, measured_arguments) = SETUPS[row](context)
        if context.warmup > 0:
            wrk(context, row, "warmup", server.port, path, lua, warmup_arguments, context.warmup)
        summary = wrk(context, row, "measured", server.port, path, lua, measured_arguments, context.duration)
        check(server.process.poll() is None, f"the server exited during the run: {server.log()}")
        summary["peak_rss_mib"] = server.peak_rss_mib()
    finally:
        stop_all()
    requests = summary["requests"]
    summary["rps"] = requests / (summary["duration_us"] / 1e6)
    summary["errors"] = summary["non_2xx"] + summary["socket_errors"]
    print(f"bench: {row}: {summary['rps']:.0f} req/s, p50 {summary['p50_us'] / 1000:.2f} ms, "
          f"p99 {summary['p99_us'] / 1000:.2f} ms, {summary['non_2xx']} non-2xx, "
          f"{summary['socket_errors']} socket errors", flush=True)
    if summary["errors"]:
        print(f"bench: {row}: WARNING: {summary['errors']} of {requests} answers were errors; "
              f"see {RUN_DIR}/{row}-measured.wrk.txt", file=sys.stderr)
    if summary["exhausted"]:
        print(f"bench: {row}: WARNING: the script ran out of fresh tokens or signatures "
              f"{summary['exhausted']} times" + (" (raise --max-create-rate)" if row == "create" else ""),
              file=sys.stderr)
    if requests == 0 or summary["errors"] > MOST_ERRORS * requests:
        raise BenchError(f"{summary['errors']} of {requests} answers were errors; see {RUN_DIR}/{row}-measured.wrk.txt")
    return summary


# --- report --------------------------------------------------------------------------------------

def git_describe():
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True)
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def cpu_model():
    with open("/proc/cpuinfo") as file:
        for line in file:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def report(context, results, failures):
    floor = results.get("floor", {}).get("rps")
    lines = [
        "| row | req/s | p50 ms | p99 ms | × floor | non-2xx | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in context.rows:
        label = LABELS[row].format(version=context.peer_version)
        if row in failures:
            lines.append(f"| {label} | failed | | | | | |")
            continue
        r = results[row]
        ratio = f"{r['rps'] / floor:.2f}" if floor else "–"
        rss = f"{r['peak_rss_mib']:.1f}" if r["peak_rss_mib"] is not None else "–"
        non_2xx = f"{r['non_2xx']}" + (f" (+{r['socket_errors']} socket)" if r["socket_errors"] else "")
        lines.append(f"| {label} | {r['rps']:.0f} | {r['p50_us'] / 1000:.2f} | {r['p99_us'] / 1000:.2f} "
                     f"| {ratio} | {non_2xx} | {rss} |")
    table = "\n".join(lines)
    notes = [
        f"`scripts/bench` on {datetime.date.today().isoformat()}, {cpu_model()}, {os.cpu_count()} cores: "
        f"each server pinned to core {SERVER_CORE}, wrk to core {LOAD_CORE} (`wrk -t1 -c{context.connections}`), "
        f"{context.warmup} s warm-up then {context.duration} s measured, a fresh server per row.",
        f"keygate: {context.keygate_label}; embedded SQLite store (every token and write on disk before it "
        "is answered), EdDSA, logs at the default level to /dev/null.",
        "× floor: the row's requests per second over the floor's, in this run. Peak RSS: the server's "
        "VmHWM after its row.",
        "refresh keeps a pool of live tokens (each refreshes once); create signs every request with its "
        f"own millisecond; search is one signed read repeated; the peer is oidc-provider {context.peer_version} "
        "(Node " + context.node_version + "), client_secret_basic, EdDSA JWT access tokens, in memory.",
    ]
    if failures:
        notes.append("FAILED rows: " + "; ".join(f"{row}: {why}" for row, why in failures.items()))
    return table, notes


def build(context):
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", BENCH_DIR)
    target = ["--bin", "keygate"] if context.keygate is None else []
    command = ["cargo", "build", "--release", "--locked", "-p", "keygate", *target, "--example", "floor"]
    print("bench: " + " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    release = os.path.join(env["CARGO_TARGET_DIR"], "release")
    context.floor = os.path.join(release, "examples", "floor")
    if context.keygate is None:
        context.keygate = os.path.join(release, "keygate")
        context.keygate_label = f"built from this tree, {git_describe()}"
    else:
        context.keygate = os.path.abspath(context.keygate)
        context.keygate_label = f"`{context.keygate}`"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keygate", help="a prebuilt keygate binary (default: build this tree's)")
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per row (10)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per row (3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"which rows, in order ({','.join(ROWS)})")
    parser.add_argument("--max-create-rate", type=int, default=25_000,
                        help="creates/s the create row signs enough requests for (25000)")
    parser.add_argument("--out", default=os.path.join(BENCH_DIR, "report.md"), help="the Markdown report")
    context = parser.parse_args()
    context.rows = [row.strip() for row in context.rows.split(",") if row.strip()]
    unknown = [row for row in context.rows if row not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; rows are {','.join(ROWS)}")
    if context.duration < 1 or context.warmup < 0 or context.connections < 1:
        parser.error("--duration and --connections are at least 1, --warmup at least 0")
    cores = os.sched_getaffinity(0)
    if not {int(SERVER_CORE), int(LOAD_CORE)} <= cores:
        sys.exit(f"bench: needs cores {SERVER_CORE} and {LOAD_CORE}; this process may use {sorted(cores)}")
    if context.keygate is not None and not os.access(context.keygate, os.X_OK):
        sys.exit(f"bench: --keygate {context.keygate} is not an executable")

    build(context)
    context.peer_version = peer_version()
    context.node_version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    os.makedirs(RUN_DIR)

    results, failures = {}, {}
    try:
        for row in context.rows:
            try:
                results[row] = run_row(context, row)
            except (BenchError, OSError, KeyError, TypeError, ValueError) as error:
                failures[row] = str(error)[:500]
                print(f"bench: {row}: FAILED: {error}", file=sys.stderr, flush=True)
    finally:
        stop_all()

    table, notes = report(context, results, failures)
    os.makedirs(os.path.dirname(os.path.abspath(context.out)), exist_ok=True)
    with open(context.out, "w") as file:
        file.write(table + "\n\n" + "\n".join(f"- {note}" for note in notes) + "\n")
    print("\n" + table + "\n\n" + "\n".join(notes) + f"\n\nbench: wrote {context.out}")
    if failures:
        sys.exit(f"bench: FAILED rows: {', '.join(failures)} (wrk's output and server logs in {RUN_DIR})")


if __name__ == "__main__":
    main()
