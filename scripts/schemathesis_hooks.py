"""Schemathesis hooks for scripts/schemathesis: sign admin requests, present real keys and tokens.

Loaded through SCHEMATHESIS_HOOKS. KEYGATE_TEST_URL names the server and KEYGATE_TEST_DATA_DIR
its data directory, whose credentials.json holds the admin credential. At import, two keys are
created through the SpaceONE API: one registered for the client routes (the token and refresh
routes draw on its quota) and one whose id stands in for generated ids on key-scoped admin routes
(a delete or disable of it is as valid a test as any). Schemathesis also reuses the ids that
answers show it, so a key-scoped admin request that names the client key is sent to the other
one instead: the client key stays enabled and its value valid.

Every admin request is signed with NCP signature v2 over what is actually sent: the signer runs as
a `requests` auth, on the prepared request, so the path and query are the encoded ones. A write is
accepted once per signature and two writes to one path in the same millisecond are refused, so
each request gets its own timestamp (a counter past the clock). One admin request in ten keeps the
headers Schemathesis generated, so refusals are tested too.
"""

import base64
import hashlib
import hmac
import itertools
import json
import os
import pathlib
import threading
import time
import urllib.request

import requests
import schemathesis

BASE_URL = os.environ["KEYGATE_TEST_URL"].rstrip("/")
DATA_DIR = pathlib.Path(os.environ["KEYGATE_TEST_DATA_DIR"])
CREDENTIAL = json.loads((DATA_DIR / "credentials.json").read_text())[0]

_lock = threading.Lock()
_last_timestamp = 0
_calls = itertools.count()


def _timestamp():
    """Epoch milliseconds, never the same twice."""
    global _last_timestamp
    with _lock:
        _last_timestamp = max(int(time.time() * 1000), _last_timestamp + 1)
        return str(_last_timestamp)


def signature_headers(method, path_and_query):
    timestamp = _timestamp()
    message = f"{method} {path_and_query}\n{timestamp}\n{CREDENTIAL['access_key']}"
    digest = hmac.new(CREDENTIAL["secret_key"].encode(), message.encode(), hashlib.sha256).digest()
    return {
        "x-ncp-apigw-timestamp": timestamp,
        "x-ncp-iam-access-key": CREDENTIAL["access_key"],
        "x-ncp-apigw-signature-v2": base64.b64encode(digest).decode(),
    }


class Signer(requests.auth.AuthBase):
    """Signs the request exactly as prepared for the wire."""

    def __call__(self, request):
        request.headers.update(signature_headers(request.method, request.path_url))
        return request


def _call(method, path, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE_URL + path, data=data, method=method, headers=headers or {})
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def _admin(method, path, body=None):
    return _call(method, path, body, signature_headers(method, path))


def _create_key(name):
    return _admin(
        "POST", "/identity/v1/api-keys", {"user_id": "schemathesis", "name": name, "max_total_usage": 2**31 - 1}
    )


_client = _create_key("schemathesis-client")
CLIENT_KEY, CLIENT_KEY_ID = _client["api_key"], _client["api_key_id"]
_call("POST", "/v1/key/regist", {"key": CLIENT_KEY})
TARGET_KEY_ID = _create_key("schemathesis-target")["api_key_id"]


def _fresh_token():
    return _call("GET", "/v1/auth/token", headers={"x-api-key": CLIENT_KEY})["result"]["access_token"]


def _set_header(case, name, value):
    kept = {k: v for k, v in (case.headers or {}).items() if k.lower() != name}
    case.headers = {**kept, name: value}


@schemathesis.hook
def before_call(context, case, kwargs):
    n = next(_calls)
    path = case.operation.path
    if path.startswith(("/identity/", "/api/v1/")):
        if n % 10 != 0:
            kwargs["auth"] = Signer()
        named = (case.path_parameters or {}).get("api_key_id")
        if named is not None and (named == CLIENT_KEY_ID or n % 2 == 0):
            case.path_parameters = {**case.path_parameters, "api_key_id": TARGET_KEY_ID}
    elif path in ("/v1/key/detail", "/v1/auth/token") and n % 2 == 0:
        _set_header(case, "x-api-key", CLIENT_KEY)
    elif path == "/v1/key/regist" and n % 2 == 0 and isinstance(case.body, dict):
        case.body = {**case.body, "key": CLIENT_KEY}
    elif path == "/v1/auth/refresh" and n % 2 == 0:
        _set_header(case, "authorization", f"Bearer {_fresh_token()}")
