"""``python -m client.web``: serve the upload page on 127.0.0.1 in front of Triton (HTTP).

    python -m client.web --triton-url 127.0.0.1:8000 --port 8080   # then open http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import logging
import sys
from functools import partial

from werkzeug.serving import make_server

from client.triton import ClientError, EscClient
from client.web.app import create_app

log = logging.getLogger("client.web")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m client.web",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--triton-url", default="127.0.0.1:8000",
                        help="HOST:PORT of Triton's HTTP endpoint")
    parser.add_argument("--model", default="esc", help="ensemble name (default: esc)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--top-k", type=int, default=5, help="labels shown by default")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per Triton request")
    parser.add_argument("--max-upload-mb", type=float, default=32.0)
    args = parser.parse_args(argv)
    if args.top_k < 1 or args.max_upload_mb <= 0:
        parser.error(f"need --top-k >= 1 and --max-upload-mb > 0, "
                     f"got {args.top_k}, {args.max_upload_mb}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    connect = partial(EscClient, args.triton_url, "http", args.model, args.timeout)
    try:
        connect().close()
    except ClientError as err:  # the page shows this until the server is up
        log.warning("%s", err)
    app = create_app(connect, triton_url=args.triton_url, model=args.model, top_k=args.top_k,
                     max_upload_mb=args.max_upload_mb)
    try:
        server = make_server(args.host, args.port, app, threaded=True)
    except OSError as err:
        print(f"client.web: cannot listen on {args.host}:{args.port} ({err}); pass another --port",
              file=sys.stderr)
        return 2
    log.info("upload page on http://%s:%d (Triton %s, model %s)", args.host, server.port,
             args.triton_url, args.model)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
