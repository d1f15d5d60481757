"""The git commit a run's code comes from, and the files changed from it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def git_state(cwd: Path | None = None) -> tuple[str, list[str]] | None:
    """(commit, paths changed from it) of the checkout at ``cwd``; None where that is no git
    checkout or git is missing."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    status = subprocess.run(["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True).stdout
    return head.stdout.strip(), sorted(line[3:] for line in status.splitlines())


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.provenance DIR``: the checkout's commit into DIR/commit and its changed
    paths, one a line, into DIR/changed_files, for a copy that travels without .git
    (deploy/offline_rows.sh hands them to its runs as ESC_GIT_COMMIT and ESC_GIT_CHANGED_FILES)."""
    parser = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    out = parser.parse_args(argv).out
    state = git_state()
    if state is None:
        print("no git checkout here (or no git): run it from the repository root", file=sys.stderr)
        return 1
    commit, changed = state
    out.mkdir(parents=True, exist_ok=True)
    (out / "commit").write_text(commit + "\n")
    (out / "changed_files").write_text("".join(f"{path}\n" for path in changed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
