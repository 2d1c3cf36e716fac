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
from werkzeug.serving import BaseWSGIServer, make_server


class OneRequestPerConnection(MotoRequestHandler):
    # A single thread held by an idle keep-alive connection would starve every other client.
    protocol_version = "HTTP/1.0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    # Tests open hundreds of connections at once; a short accept queue would drop them.
    BaseWSGIServer.request_queue_size = 4096
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        "127.0.0.1", args.port, app, threaded=False, processes=1, request_handler=OneRequestPerConnection
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
