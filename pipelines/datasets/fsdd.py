"""The Free Spoken Digit Dataset (FSDD, Z. Jackson et al., CC BY-SA 4.0) as a fetch-stage adapter.

Covers the ``recordings/<digit>_<speaker>_<take>.wav`` layout of the GitHub repository
(github.com/Jakobovski/free-spoken-digit-dataset, tag v1.0.10: 3000 mono 8 kHz WAVs, 10 digits
x 300, 6 speakers x 500, takes 0-49), found in a directory holding ``recordings/``, the
``recordings/`` directory itself, or a zip of the repository
(``free-spoken-digit-dataset-<ref>/recordings/...``, e.g. the official archive ``URL``).
Every recording's sha256 is checked against ``checksums/fsdd.sha256`` (see NOTICE.md).

Labels: the digit names ``zero`` .. ``nine`` (``DIGITS``); the target is the spoken digit's
value. Stems are the repository's file names. meta.csv adds a ``speaker`` column. Splits:

- ``official`` (the repository README): takes 0-4 are the test set, fold 1 (300 clips);
  takes 5-49 the training set, fold 2 (2700 clips). The same speakers are in both.
- ``speaker``: leave one speaker out; the fold is the 1-based position of the speaker in the
  sorted speaker names (george 1, jackson 2, lucas 3, nicolas 4, theo 5, yweweler 6).

Does not cover: the speakers' meta-data (``metadata.py`` upstream) or recordings added after
v1.0.10 (they have no checksum and are refused).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pipelines.datasets.base import (
    CHECKSUMS,
    Clip,
    Dataset,
    DatasetError,
    Listing,
    Structure,
    listing,
    read_checksums,
)
from pipelines.datasets.sources import Source

FSDD_CHECKSUMS = CHECKSUMS / "fsdd.sha256"
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
N_SPEAKERS = 6
TEST_TAKES = range(5)  # the official test set: takes 0-4 of every speaker and digit

_CLIP = re.compile(r"^((?:[^/]+/)?recordings/|)([^/]+\.wav)$")  # group 1: dataset root
_NAME = re.compile(r"^([0-9])_([A-Za-z]+)_([0-9]+)\.wav$")  # digit, speaker, take


@dataclass(frozen=True)
class Fsdd(Dataset):
    """FSDD v1.0.10: 3000 clips, 10 digits x 300, 6 speakers x 500; sha256 of every clip."""

    name: ClassVar[str] = "fsdd"
    url: ClassVar[str] = (
        "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.zip"
    )
    splits: ClassVar[tuple[str, ...]] = ("official", "speaker")
    extra_columns: ClassVar[tuple[str, ...]] = ("speaker",)
    checksums: Path | None = FSDD_CHECKSUMS  # sha256sum file of recordings/; None: not checked

    def locate(self, source: Source) -> str:
        roots = {match[1] for name in source.names if (match := _CLIP.match(name))}
        if not roots:
            raise self.not_found(
                source,
                "[<top>/]recordings/<digit>_<speaker>_<take>.wav, or those WAVs in the folder "
                "itself",
            )
        source.set_root(roots, "FSDD recordings")
        return "FSDD recordings"

    def rows(self, source: Source, layout: str, split: str) -> Listing:
        parsed, bad = [], []
        for name in sorted(source.names):
            match = _CLIP.match(name)
            if match is None or match[1] != source.root:
                continue
            if (fields := _NAME.match(match[2])) is None:
                bad.append(source.where(match[2]))
                continue
            parsed.append((match[2], int(fields[1]), fields[2], int(fields[3])))
        if bad:
            raise DatasetError(
                f"not FSDD recordings (names are <digit>_<speaker>_<take>.wav): "
                f"{listing(bad)}; {source.fix}"
            )
        speakers = sorted({speaker for _, _, speaker, _ in parsed})
        if split == "speaker":
            fold_of = {speaker: i for i, speaker in enumerate(speakers, 1)}
            fold_names = {i: speaker for speaker, i in fold_of.items()}
        else:
            last = TEST_TAKES[-1]
            fold_names = {1: f"test (takes 0-{last})", 2: f"train (takes {last + 1} and up)"}
        clips = [
            Clip(
                member,
                member,
                fold_of[speaker] if split == "speaker" else (1 if take in TEST_TAKES else 2),
                digit,
                DIGITS[digit],
                extra={"speaker": speaker},
            )
            for member, digit, speaker, take in parsed
        ]
        return Listing(clips, list(DIGITS), fold_names=fold_names)

    def structure(self, layout: str, split: str) -> Structure:
        n_folds = N_SPEAKERS if split == "speaker" else 2
        return Structure(
            n_clips=3000,
            n_classes=len(DIGITS),
            folds=tuple(range(1, n_folds + 1)),
            clips_per_class=300,
            clips_per_speaker=500,
        )

    def verify(self, source: Source, layout: str, files: Mapping[str, Path]) -> list[str]:
        if self.checksums is None:
            return []
        sums = read_checksums(self.checksums, "sha256")
        source.verify_checksums(files, sums, "sha256", "FSDD v1.0.10")
        return [f"sha256 of every recording ({self.checksums.name})"]
