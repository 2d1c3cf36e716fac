"""Invokes the functions under a Lambda runtime: cargo-lambda's emulator (`cargo lambda watch`)
runs each function binary behind the Lambda runtime API, and each is invoked with its `events/`
file, against moto standing in for DynamoDB and Secrets Manager. The events' placeholder key is
replaced by a key the create function makes, so every route does its real work.

usage: python scripts/lambda_check.py --emulator URL [--all]
Without --all it invokes the main path (MAIN_PATH); scripts/lambda-check starts moto.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLACEHOLDER_ID = "api-key-0f1e2d3c4b5a"
PLACEHOLDER_KEY = "kg_0f1e2d3c4b5a_ExampleKeyValueForSamLocalInvoke2AKuJn"
ADMIN = {"access_key": "AKLAMBDACHECK000000", "secret_key": "lambda-check-secret-key-0123456789", "domain_id": "local"}
MAIN_PATH = {
    "health", "not-found", "identity-api-key-create", "key-regist", "auth-token", "auth-refresh",
    "admin-authorizer", "token-authorizer",
}

def free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


INVOKE_PORT = free_port()


def event(name, replacements=()):
    with open(os.path.join(ROOT, "events", f"{name}.json")) as file:
        text = file.read()
    for old, new in replacements:
        text = text.replace(old, new)
    body = json.loads(text)
    # Each admin write is its own request: the handler keeps its signature as the replay nonce.
    if "x-ncp-apigw-signature-v2" in body.get("headers", {}):
        body["headers"]["x-ncp-apigw-signature-v2"] = base64.b64encode(secrets.token_bytes(32)).decode()
    return body


def invoke(name, payload, timings, port=None):
    """Invokes a function through the emulator; returns its answer as JSON."""
    started = time.monotonic()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port or INVOKE_PORT}/2015-03-31/functions/{name}/invocations",
        data=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        answer = json.loads(response.read())
    timings.setdefault(name, []).append(time.monotonic() - started)
    return answer


def body_of(answer):
    return json.loads(answer["body"]) if answer.get("body") else None


def expect(name, condition, answer):
    if not condition:
        sys.exit(f"lambda-check: {name} answered {json.dumps(answer)[:600]}")
    print(f"ok  {name}")


def sign(method, path, timestamp):
    text = f"{method} {path}\n{timestamp}\n{ADMIN['access_key']}".encode()
    digest = hmac.new(ADMIN["secret_key"].encode(), text, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def prepare_aws(emulator):
    """A table and the three secrets on moto; returns the functions' environment, and the signing
    key (to forge tokens with)."""
    os.environ.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_REGION="us-east-1")
    session = boto3.session.Session(region_name="us-east-1")
    suffix = secrets.token_hex(4)
    table = f"keygate-lambda-check-{suffix}"
    subprocess.run(
        ["cargo", "run", "-q", "--locked", "-p", "keygate", "--", "import", "--table", table,
         "--dynamodb-endpoint", emulator, "--input", "/dev/null"],
        cwd=ROOT, check=True,
    )
    manager = session.client("secretsmanager", endpoint_url=emulator)
    signing_key, public_keys = new_signing_key("EdDSA")
    arns = {}
    for setting, value in [
        ("KEYGATE_ADMIN_CREDENTIALS", json.dumps([ADMIN])),
        ("KEYGATE_PEPPER", secrets.token_urlsafe(32)),
        ("KEYGATE_SIGNING_KEY", signing_key),
    ]:
        created = manager.create_secret(Name=f"{setting.lower()}-{suffix}", SecretString=value)
        arns[f"{setting}_SECRET_ARN"] = created["ARN"]
    return signing_key, {
        "KEYGATE_TABLE_NAME": table,
        "KEYGATE_DYNAMODB_ENDPOINT": emulator,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": emulator,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": "us-east-1",
        "KEYGATE_PUBLIC_KEYS": public_keys,
        **arns,
    }


def new_signing_key(algorithm):
    """As the README's deploy section makes them: a signing key, and its public key for the stack's
    SigningPublicKeys parameter (a JWKS in base64url)."""
    key_file = os.path.join(ROOT, "target", f"lambda-check-signing-key-{secrets.token_hex(4)}.pem")
    keygate = ["cargo", "run", "-q", "--locked", "-p", "keygate", "--", "secrets"]
    subprocess.run([*keygate, "signing-key", "--alg", algorithm, "--out", key_file], cwd=ROOT, check=True)
    public_keys = subprocess.run(
        [*keygate, "public-keys", key_file], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    with open(key_file) as file:
        signing_key = file.read()
    os.remove(key_file)
    return signing_key, public_keys


def check_rs256(environment, emulator):
    """With JwtAlgorithm RS256 (what API Gateway's built-in JWT authorizer verifies), auth-token
    signs RS256, and its token verifies against what the jwks function serves with a stock
    library (cryptography's RSA), as any JWT verifier would."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    pem, public_keys = new_signing_key("RS256")
    manager = boto3.session.Session(region_name="us-east-1").client("secretsmanager", endpoint_url=emulator)
    arn = manager.create_secret(Name=f"keygate_signing_key_rs256-{secrets.token_hex(4)}", SecretString=pem)["ARN"]
    rs256 = {**environment, "KEYGATE_JWT_ALG": "RS256", "KEYGATE_SIGNING_KEY_SECRET_ARN": arn,
             "KEYGATE_PUBLIC_KEYS": public_keys}
    port = free_port()
    watch = start_watch(rs256, port, "lambda-watch-rs256.log")
    try:
        created = body_of(invoke("identity-api-key-create", event("identity-api-key-create"), {}, port))
        ours = [(PLACEHOLDER_ID, created["api_key_id"]), (PLACEHOLDER_KEY, created["api_key"])]
        invoke("key-regist", event("key-regist", ours), {}, port)
        answer = invoke("auth-token", event("auth-token", ours), {}, port)
        expect("RS256: auth-token", answer["statusCode"] == 200, answer)
        token = body_of(answer)["result"]["access_token"]
        jwks = body_of(invoke("jwks", event("jwks"), {}, port))
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        watch.wait()
    header_text, claims_text, signature = token.split(".")
    header = json.loads(unb64url(header_text))
    key = next((key for key in jwks["keys"] if key["kid"] == header["kid"]), None)
    number = lambda field: int.from_bytes(unb64url(key[field]), "big")
    verified = False
    if key is not None and key["kty"] == "RSA" and header["alg"] == "RS256":
        public = rsa.RSAPublicNumbers(number("e"), number("n")).public_key()
        try:
            public.verify(unb64url(signature), f"{header_text}.{claims_text}".encode(), padding.PKCS1v15(), hashes.SHA256())
            verified = public.key_size >= 2048
        except InvalidSignature:
            pass
    expect("RS256: the token verifies against the JWKS (cryptography)", verified, {"header": header, "jwks": jwks})


def start_watch(environment, port=None, log_name="lambda-watch.log"):
    """`cargo lambda watch`: every function binary behind the runtime API emulator."""
    port = port or INVOKE_PORT
    env_file = os.path.join(ROOT, "target", f"{log_name}.env")
    with open(env_file, "w") as file:
        # Single quotes keep a value (the JSON of the public keys) as it is.
        assert not any("'" in value for value in environment.values())
        file.writelines(f"{name}='{value}'\n" for name, value in environment.items())
    command = ["cargo", "lambda", "watch", "--invoke-port", str(port), "--ignore-changes",
               "--env-file", env_file]
    log = open(os.path.join(ROOT, "target", log_name), "w")
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
        except urllib.error.HTTPError:
            return process
        except OSError:
            time.sleep(0.5)
            continue
        return process
    os.killpg(process.pid, signal.SIGTERM)
    sys.exit("lambda-check: cargo lambda watch did not start; see target/lambda-watch.log")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def forgeries(token, signing_key):
    """Tokens the token authorizer must refuse, each one change away from `token`: expired, for
    another audience (both signed with our own key), tampered, unsigned (`alg: none`), and signed
    by a stranger under our key id."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    header_text, claims_text, signature = token.split(".")
    header, claims = json.loads(unb64url(header_text)), json.loads(unb64url(claims_text))
    ours = load_pem_private_key(signing_key.encode(), password=None)

    def signed(key, header, claims):
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        return f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"

    now = int(time.time())
    tampered = {**claims, "scope": "admin"}
    return [
        ("expired", signed(ours, header, {**claims, "iat": now - 301, "exp": now - 1})),
        ("another audience", signed(ours, header, {**claims, "aud": "another-api"})),
        ("tampered", f"{header_text}.{b64url(json.dumps(tampered).encode())}.{signature}"),
        ("alg none", f"{b64url(json.dumps({**header, 'alg': 'none'}).encode())}.{claims_text}."),
        ("a stranger's key", signed(Ed25519PrivateKey.generate(), header, claims)),
        ("our own key, untouched", signed(ours, header, claims)),
    ]


def check(wanted, timings, published, signing_key):
    run = lambda name, payload: invoke(name, payload, timings)

    def want(name):
        return name in wanted

    if want("health"):
        answer = run("health", event("health"))
        expect("health", answer["statusCode"] == 200 and body_of(answer) == {"status": "ok"}, answer)
    if want("not-found"):
        answer = run("not-found", event("not-found"))
        expected = {"result": {"error": "Method not allowed", "code": "method_not_allowed"}}
        expect("not-found (405 in the client envelope)", answer["statusCode"] == 405 and body_of(answer) == expected, answer)
        path = "/identity/v1/nothing"
        answer = run("not-found", event("not-found", [('"/v1/auth/token"', f'"{path}"'), ('"POST"', '"GET"')]))
        expect("not-found (404 in the SpaceONE envelope)", answer["statusCode"] == 404 and body_of(answer)["error"]["code"] == "ERROR_NOT_FOUND", answer)
    if want("discovery"):
        answer = run("discovery", event("discovery"))
        expect("discovery", answer["statusCode"] == 200 and body_of(answer)["jwks_uri"].endswith("/.well-known/jwks.json"), answer)

    answer = run("jwks", event("jwks"))
    expect("jwks (the published keys)", answer["statusCode"] == 200 and body_of(answer) == published, answer)

    answer = run("identity-api-key-create", event("identity-api-key-create"))
    created = body_of(answer)
    expect("identity-api-key-create", answer["statusCode"] == 200 and created["api_key"].startswith("kg_"), answer)
    ours = [(PLACEHOLDER_ID, created["api_key_id"]), (PLACEHOLDER_KEY, created["api_key"])]

    answer = run("key-regist", event("key-regist", ours))
    expect("key-regist", answer["statusCode"] == 200 and "key_expired" in body_of(answer)["result"], answer)
    if want("key-detail"):
        answer = run("key-detail", event("key-detail", ours))
        expect("key-detail", answer["statusCode"] == 200 and body_of(answer)["result"]["remaining_total_usage"] == created["max_total_usage"], answer)
    answer = run("auth-token", event("auth-token", ours))
    token = body_of(answer)["result"]["access_token"] if answer["statusCode"] == 200 else None
    expect("auth-token", token is not None, answer)
    refresh = event("auth-refresh")
    refresh["headers"]["authorization"] = f"Bearer {token}"
    answer = run("auth-refresh", refresh)
    expect("auth-refresh", answer["statusCode"] == 200 and body_of(answer)["result"]["token_type"] == "Bearer", answer)
    answer = run("auth-refresh", refresh)
    expect("auth-refresh (a second time: reuse)", answer["statusCode"] == 429 and body_of(answer)["result"]["code"] == "token_reused", answer)

    authorization = event("admin-authorizer")
    timestamp = str(int(time.time() * 1000))
    authorization["headers"].update({
        "x-ncp-apigw-timestamp": timestamp,
        "x-ncp-iam-access-key": ADMIN["access_key"],
        "x-ncp-apigw-signature-v2": sign("POST", "/identity/v1/api-keys", timestamp),
    })
    answer = run("admin-authorizer", authorization)
    expect("admin-authorizer (signed now)", answer == {"isAuthorized": True, "context": {"domain_id": "local", "access_key": ADMIN["access_key"]}}, answer)
    authorization["rawPath"] = "/identity/v1/api-keys/stat"
    answer = run("admin-authorizer", authorization)
    expect("admin-authorizer (another path)", answer == {"isAuthorized": False, "context": {}}, answer)

    if want("token-authorizer"):
        cases = [("a fresh token", token, True), ("the placeholder", None, False)]
        cases += [(name, forged, name == "our own key, untouched") for name, forged in forgeries(token, signing_key)]
        for name, value, allow in cases:
            request = event("token-authorizer")
            if value:
                request["headers"]["authorization"] = f"Bearer {value}"
            answer = run("token-authorizer", request)
            allowed = answer.get("isAuthorized") is True and answer["context"]["tid"] == "local"
            refused = answer == {"isAuthorized": False, "context": {}}
            expect(f"token-authorizer ({name}: {'allowed' if allow else 'refused'})", allowed if allow else refused, answer)

    key_id = created["api_key_id"]
    admin = [
        ("identity-api-key-get", 200, lambda b: b["api_key_id"] == key_id),
        ("identity-api-key-list", 200, lambda b: b["total_count"] >= 1),
        ("identity-api-key-search", 200, lambda b: "results" in b),
        ("identity-api-key-stat", 200, lambda b: "results" in b),
        ("identity-api-key-disable", 200, lambda b: b["state"] == "DISABLED"),
        ("identity-api-key-enable", 200, lambda b: b["state"] == "ENABLED"),
        ("ncp-api-key-get", 200, lambda b: b["apiKeyId"] == key_id),
        ("ncp-api-key-list", 200, lambda b: any(k["apiKeyId"] == key_id for k in b["apiKeyPage"]["content"])),
        ("ncp-api-key-update", 200, lambda b: b["apiKeyName"] == "checkout-v2"),
        ("ncp-api-key-regenerate", 200, lambda b: b["apiKeyId"] == key_id),
        ("ncp-api-key-create", 201, lambda b: b["primaryKey"].startswith("kg_")),
        ("identity-api-key-delete", 200, lambda b: True),
        # The SpaceONE delete above took the key.
        ("ncp-api-key-delete", 404, lambda b: b == {"error": {"errorCode": "404", "message": "api key not found"}}),
    ]
    for name, status, holds in admin:
        if want(name):
            answer = run(name, event(name, ours))
            good = answer["statusCode"] == status and holds(body_of(answer) or {})
            expect(f"{name} ({status})", good, answer)


def check_metrics(invoked):
    """The functions' metrics documents (embedded metric format) in their output: one cold start
    per function, and the events the checks caused, each counted."""
    totals = {}
    with open(os.path.join(ROOT, "target", "lambda-watch.log")) as log:
        for line in log:
            start = line.find('{"_aws"')
            if start < 0:
                continue
            document = json.loads(line[start:])
            for directive in document["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    totals[metric["Name"]] = totals.get(metric["Name"], 0) + document[metric["Name"]]
    expected = {"ColdStart": len(invoked), "TokensIssued": 2, "RefreshReuseDetected": 1, "SignatureRefused": 1}
    expect("metrics (embedded metric format)", totals == expected, {"counted": totals, "expected": expected})


def check_start_without_a_table(environment):
    """A Lambda whose table is not configured fails its start, naming the variable."""
    environment = {name: value for name, value in environment.items() if name != "KEYGATE_TABLE_NAME"}
    port = free_port()
    watch = start_watch(environment, port, "lambda-watch-without-table.log")
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/2015-03-31/functions/auth-token/invocations",
            data=json.dumps(event("auth-token")).encode(),
        )
        try:
            urllib.request.urlopen(request, timeout=120).read()
        except (urllib.error.URLError, OSError):
            pass  # the function never starts, so there is no answer
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        watch.wait()
    with open(os.path.join(ROOT, "target", "lambda-watch-without-table.log")) as log:
        said = log.read()
    wanted = "KEYGATE_TABLE_NAME is not set: a Lambda keeps its keys in that DynamoDB table"
    expect("auth-token without a table (fails its start)", wanted in said, {"log": said[-600:]})


INIT_MEASURED = ["auth-token", "admin-authorizer", "token-authorizer"]


def init_duration(binary, environment):
    """Lambda's Init Duration of one cold start: from the process's start to its first request
    for an invocation (`GET .../invocation/next`), served here by a minimal runtime API."""
    asked = threading.Event()

    class RuntimeApi(BaseHTTPRequestHandler):
        def do_GET(self):
            asked.set()  # init is over; no invocation is ever handed out

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**os.environ, **environment, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_port}",
           "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(binary), "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
           "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST"}
    started = time.monotonic()
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    finished = asked.wait(timeout=30)
    elapsed = time.monotonic() - started
    process.kill()
    _, stderr = process.communicate()
    server.shutdown()
    if not finished:
        sys.exit(f"lambda-check: {binary} never asked for an invocation: {stderr.decode()[-600:]}")
    return elapsed


def measure_init(environment, runs=7):
    """Init durations of release builds (this machine's architecture) against moto: median and
    range over `runs` cold starts each."""
    # One build per function, as `sam build` makes them: each with only its own features.
    for name in INIT_MEASURED:
        subprocess.run(["cargo", "build", "-q", "--release", "--locked", "-p", name], cwd=ROOT, check=True)
    print(f"\ninit duration (release build, {runs} cold starts each, moto on loopback), ms:")
    print("| function | median | min | max |\n|---|---:|---:|---:|")
    for name in INIT_MEASURED:
        binary = os.path.join(ROOT, "target", "release", name)
        times = sorted(init_duration(binary, environment) * 1000 for _ in range(runs))
        print(f"| {name} | {times[runs // 2]:.1f} | {times[0]:.1f} | {times[-1]:.1f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--init", action="store_true", help="also measure init durations")
    args = parser.parse_args()
    functions = sorted(os.listdir(os.path.join(ROOT, "functions")))
    wanted = set(functions) if args.all else MAIN_PATH

    signing_key, environment = prepare_aws(args.emulator)
    watch = start_watch(environment)
    timings = {}
    try:
        encoded = environment["KEYGATE_PUBLIC_KEYS"]
        published = json.loads(unb64url(encoded))
        check(wanted, timings, published, signing_key)
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        watch.wait()
    check_metrics(timings)
    check_rs256(environment, args.emulator)
    check_start_without_a_table(environment)
    if args.init:
        measure_init(environment)
    print("\nfirst invocation (build, cold start and call) and the next, in seconds:")
    for name, seconds in sorted(timings.items()):
        later = f"{min(seconds[1:]):.3f}" if len(seconds) > 1 else "-"
        print(f"  {name:<26} {seconds[0]:8.3f} {later:>8}")


if __name__ == "__main__":
    main()
