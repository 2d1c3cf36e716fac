"""A DynamoDB-compatible emulator for the tests: moto's server, single-threaded.

moto's backend takes no lock around a conditional update, so its usual threaded server could
apply two racing conditional writes both. Serving one request at a time gives the per-item
atomicity DynamoDB guarantees; the concurrency tests then prove keygate's conditions, not
moto's. Data lives in memory only.

usage: python3 scripts/dynamodb-emulator.py --port PORT
"""

import argparse
import os
import signal
import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        "127.0.0.1", args.port, app, threaded=False, processes=1, request_handler=MotoRequestHandler
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # With --port 0 the system picks a free port; say which.
    print(f"dynamodb emulator listening on http://127.0.0.1:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
