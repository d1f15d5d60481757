"""The git commit a run's code comes from, and the files changed from it."""

from __future__ import annotations

import subprocess
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
