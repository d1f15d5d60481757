"""``esc-classify``: classify audio files with the served `esc` ensemble.

Arguments are files and directories; a directory is searched recursively for audio files
(.wav .flac .ogg .oga .mp3 .aif .aiff, any case), in sorted order. Each file is cropped or
padded to the model's clip length and classified (``--concurrency`` requests in flight); with
``--timeline`` it is classified as a long recording instead, in windows of the clip length every
``--hop`` seconds, sent ``--batch-size`` windows per request, with consecutive windows sharing a
top-1 class at or above ``--threshold`` merged into events. A progress bar goes to stderr when
stderr is a terminal.

``--json`` prints one object per input file per line, in input order (schema 1):

    {"schema": 1,
     "file": str,                      # the path as given or as found in a directory
     "error": str | null,              # why the file has no result; null when classified
     "top_k": [{"label": str, "probability": float}],   # highest first; [] on error; with
                                       # --timeline: top-K of the mean over the windows
     "timeline": null | {              # with --timeline (null on error or without it)
         "duration": float, "window": float, "hop": float, "threshold": float,
         "windows": [{"start": float, "end": float, "top_k": [{"label": ..., "probability": ...}]}],
         "events": [{"label": str, "start": float, "end": float,
                     "confidence": float, "windows": int}]},   # confidence: mean top-1
     "plot": str | null}               # the PNG written for this file (--plot)

Times are seconds from the start of the file (3 decimals), probabilities have 6 decimals. A
schema version only ever gains keys. A directory without audio files gives one object with its
path as "file" and the reason as "error".

``--plot OUT.png`` draws the waveform, the log-mel returned by the ensemble (LOGMEL), the top-K
bars and, with ``--timeline``, the per-window probabilities with the events outlined. With one
input file it writes OUT.png; with several, OUT-<stem>.png per file, next to OUT.png (-2, -3,
... appended when stems repeat).

Exit status: 0 when every file was classified; 1 when some were not (each with its reason on
stderr, and in its JSON "error"); 2 when the server cannot be used (not reachable, model not
ready, shared memory refused, or lost during the run; argparse also exits 2 on bad arguments).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from client.audio import AudioError
from client.triton import PROTOCOLS, ClientError, EscClient, FileResult, RetryPolicy, ServerUnavailable
from client.timeline import Timeline, classify_recording

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
SCHEMA = 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    intro, details = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(prog="esc-classify", description=intro, epilog=details,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio files or directories (searched recursively)")
    parser.add_argument("--url", help="HOST:PORT of Triton (default 127.0.0.1:8001 gRPC, :8000 HTTP)")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="grpc")
    parser.add_argument("--model", default="esc", help="ensemble name (default: esc)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    parser.add_argument("--retries", type=int, default=3,
                        help="retries while the server is unavailable, with exponential backoff (default 3)")
    parser.add_argument("--concurrency", type=int, default=4, help="files in flight at once (default 4)")
    parser.add_argument("--shared-memory", action="store_true",
                        help="send and receive tensors through system shared memory (server on this host)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file per line")
    parser.add_argument("--timeline", action="store_true", help="long recordings: classify in sliding windows")
    parser.add_argument("--hop", type=float, help="--timeline: seconds between windows (default: the window)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="--timeline: least top-1 probability of a window in an event (default 0.5)")
    parser.add_argument("--batch-size", type=int, default=8, help="--timeline: windows per request (default 8)")
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help="plots: OUT.png for one file, OUT-<stem>.png each for several")
    args = parser.parse_args(argv)
    checks = {
        "--top-k must be >= 1": args.top_k < 1,
        "--concurrency must be >= 1": args.concurrency < 1,
        "--retries must be >= 0": args.retries < 0,
        "--timeout must be > 0": args.timeout <= 0,
        "--batch-size must be >= 1": args.batch_size < 1,
        "--hop must be > 0": args.hop is not None and args.hop <= 0,
        "--threshold must be within [0, 1]": not 0 <= args.threshold <= 1,
        "--plot must name a .png file": args.plot is not None and args.plot.suffix.lower() != ".png",
    }
    for message, bad in checks.items():
        if bad:
            parser.error(message)
    return args


def expand(paths: list[str]) -> tuple[list[str], list[str]]:
    """Files as given and the audio files under each directory (sorted); and empty directories."""
    files, empty = [], []
    for p in paths:
        if not Path(p).is_dir():
            files.append(p)
            continue
        found = sorted(str(f) for f in Path(p).rglob("*")
                       if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file())
        files.extend(found)
        if not found:
            empty.append(p)
    return files, empty


def plot_paths(out: Path, files: list[str]) -> list[Path]:
    """OUT.png for one file; OUT-<stem>.png for several, with -2, -3, ... for repeated stems."""
    if len(files) == 1:
        return [out]
    used: set[Path] = set()
    paths = []
    for f in files:
        stem, n = Path(f).stem, 1
        path = out.with_name(f"{out.stem}-{stem}{out.suffix}")
        while path in used:
            n += 1
            path = out.with_name(f"{out.stem}-{stem}-{n}{out.suffix}")
        used.add(path)
        paths.append(path)
    return paths


def record(file: str, top: list[tuple[str, float]] | None = None, timeline: Timeline | None = None,
           error: str | None = None, plot: Path | None = None) -> dict:
    """One JSON line of the schema above."""
    return {"schema": SCHEMA, "file": file, "error": error,
            "top_k": [{"label": k, "probability": round(p, 6)} for k, p in top or []],
            "timeline": timeline.to_dict() if timeline is not None else None,
            "plot": str(plot) if plot is not None else None}


class Output:
    """Prints results (text or JSON lines) in input order and counts failures."""

    def __init__(self, as_json: bool) -> None:
        self.as_json, self.failed = as_json, 0

    def fail(self, file: str, reason: str) -> None:
        self.failed += 1
        if self.as_json:
            print(json.dumps(record(file, error=reason)), flush=True)
        tqdm.write(f"esc-classify: {reason}", file=sys.stderr)

    def clip(self, file: str, top: list[tuple[str, float]], plot: Path | None) -> None:
        if self.as_json:
            print(json.dumps(record(file, top, plot=plot)), flush=True)
            return
        print(file)
        for rank, (label, prob) in enumerate(top, 1):
            print(f"  {rank}. {label:<20s} {prob:7.2%}")

    def timeline(self, file: str, tl: Timeline, top: list[tuple[str, float]], plot: Path | None) -> None:
        if self.as_json:
            print(json.dumps(record(file, top, tl, plot=plot)), flush=True)
            return
        print(f"{file}  ({tl.duration:.1f} s: {len(tl.windows)} windows of {tl.window:g} s every {tl.hop:g} s)")
        for w in tl.windows:
            tops = "  ".join(f"{label} {prob:.0%}" for label, prob in w.top)
            print(f"  {w.start:8.1f} -{w.end:8.1f} s  {tops}")
        print(f"  events (top-1 >= {tl.threshold:.0%}):" + ("" if tl.events else " none"))
        for e in tl.events:
            print(f"  {e.start:8.1f} -{e.end:8.1f} s  {e.label:<20s} {e.confidence:6.1%} mean over "
                  f"{e.windows} window(s)")
        print("  overall: " + "  ".join(f"{label} {prob:.1%}" for label, prob in top))


def run_clips(client: EscClient, files: list[str], plots: list[Path | None], top_k: int,
              args: argparse.Namespace, out: Output) -> None:
    pending: dict[int, FileResult] = {}
    next_index = 0
    bar = tqdm(total=len(files), unit="file", file=sys.stderr, disable=None)

    def emit(result: FileResult, plot: Path | None) -> None:
        if result.error is not None:
            return out.fail(result.path, result.error)
        pred = result.prediction
        if plot is not None:
            from client.plots import plot_clip

            try:
                plot_clip(plot, client.load(result.path), client.sample_rate, pred.logmel, pred.top,
                          Path(result.path).name)
            except (OSError, AudioError) as err:
                return out.fail(result.path, f"{result.path}: cannot write the plot {plot} ({err})")
        out.clip(result.path, pred.top, plot)

    def on_result(index: int, result: FileResult) -> None:  # in order, as soon as possible
        nonlocal next_index
        bar.update(1)
        pending[index] = result
        while next_index in pending:
            emit(pending.pop(next_index), plots[next_index])
            next_index += 1

    client.classify_many(files, top_k, args.concurrency, with_logmel=args.plot is not None, on_result=on_result)
    bar.close()


def run_timelines(client: EscClient, files: list[str], plots: list[Path | None], top_k: int,
                  args: argparse.Namespace, out: Output) -> ServerUnavailable | None:
    down: ServerUnavailable | None = None
    for file, plot in zip(files, plots):
        if down is not None:
            out.fail(file, f"{file}: {down}")
            continue
        bar = tqdm(desc=Path(file).name, unit="window", file=sys.stderr, disable=None, leave=False)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            tl = classify_recording(client, file, args.hop, args.batch_size, top_k, args.threshold,
                                    keep_logmel=plot is not None, on_batch=progress)
            if plot is not None:
                from client.plots import plot_recording

                plot_recording(plot, tl, tl.top(top_k), Path(file).name)
        except (AudioError, ClientError, OSError) as err:
            if isinstance(err, ServerUnavailable):
                down = err
            out.fail(file, str(err) if isinstance(err, AudioError) else f"{file}: {err}")
            continue
        finally:
            bar.close()
        out.timeline(file, tl, tl.top(top_k), plot)
    return down


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="esc-classify: %(message)s")
    files, empty = expand(args.paths)
    out = Output(args.json)
    for directory in empty:
        out.fail(directory, f"{directory}: no audio files ({' '.join(AUDIO_EXTENSIONS)}) in it or below")
    if not files:
        return 1
    try:
        client = EscClient(args.url, args.protocol, args.model, args.timeout,
                           retry=RetryPolicy(attempts=args.retries + 1), shared_memory=args.shared_memory)
    except ClientError as err:
        print(f"esc-classify: {err}", file=sys.stderr)
        return 2
    plots: list[Path | None] = plot_paths(args.plot, files) if args.plot else [None] * len(files)
    with client:
        top_k = min(args.top_k, len(client.labels))
        if args.timeline:
            down = run_timelines(client, files, plots, top_k, args, out)
        else:
            run_clips(client, files, plots, top_k, args, out)
            down = client.server_down
    if down is not None:
        return 2
    return 1 if out.failed else 0


if __name__ == "__main__":
    sys.exit(main())
