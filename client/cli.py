"""``esc-classify``: classify audio files with the served `esc` ensemble.

Prints the top-K labels with confidence per file, or one JSON object per line with ``--json``:
``{"file": str, "top_k": [{"label": str, "probability": float}], "error": null}``, where a file
that could not be classified has ``"top_k": []`` and ``"error": "<reason>"``. Exits 0 only when
every file was classified, 1 when some were not, 2 when the server cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys

from client.audio import AudioError
from client.triton import PROTOCOLS, ClientError, EscClient


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="esc-classify", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="WAV, FLAC or OGG files")
    parser.add_argument("--url", help="HOST:PORT of Triton (default 127.0.0.1:8001 gRPC, :8000 HTTP)")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="grpc")
    parser.add_argument("--model", default="esc", help="ensemble name (default: esc)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--json", action="store_true", help="one JSON object per file")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error(f"--top-k must be >= 1, got {args.top_k}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        client = EscClient(args.url, args.protocol, args.model, args.timeout)
    except ClientError as err:
        print(f"esc-classify: {err}", file=sys.stderr)
        return 2
    failed = 0
    with client:
        for path in args.files:
            try:
                pred = client.classify_file(path, min(args.top_k, len(client.labels)))
            except (AudioError, ClientError) as err:
                failed += 1
                reason = str(err) if isinstance(err, AudioError) else f"{path}: {err}"
                if args.json:
                    print(json.dumps({"file": path, "top_k": [], "error": reason}))
                print(f"esc-classify: {reason}", file=sys.stderr)
                continue
            if args.json:
                print(json.dumps({"file": path, **pred.to_dict(), "error": None}))
            else:
                print(path)
                for rank, (label, prob) in enumerate(pred.top, 1):
                    print(f"  {rank}. {label:<20s} {prob:7.2%}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
