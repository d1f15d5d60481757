"""The one interface every dataset of the fetch stage implements, and the checks they share.

Covers: ``Dataset`` (an adapter: name, official URL, splits, how to find the dataset in a
source, how to read its rows, what structure to expect, how to check its integrity), the row
type ``Clip``, the expected ``Structure`` and its generic check, checksum files (``md5sum`` /
``sha256sum`` format) and ``DatasetError``. Does not cover: reading archives or downloading
(``sources``), decoding audio or writing the output (``pipelines.fetch``).

How the stage uses an adapter (``pipelines.fetch.collect``)::

    layout = adapter.locate(source)                  # sets source.root; DatasetError if absent
    rows = adapter.rows(source, layout, split)       # clips + labels (+ metadata checks)
    check_structure(rows, adapter.structure(layout, split), ...)
    ...every listed clip present, copied out of the archive...
    checks = adapter.verify(source, layout, files)   # integrity of the clips (checksums)

Targets are 0..n_classes-1 and ``labels[target]`` is the category name; each adapter
documents its order, and the order never depends on the order of files in a source.
"""

from __future__ import annotations

import abc
import csv
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from pipelines.datasets.sources import Source

CHECKSUMS = Path(__file__).resolve().parent.parent / "checksums"  # packaged reference files
SPLITS = ("official", "speaker")  # every value data.split can take (adapters support a subset)
_MAX_LISTED = 5  # problems named in one message
_HEX_DIGITS = {"md5": 32, "sha256": 64}


class DatasetError(ValueError):
    """The source is not a complete, intact dataset; the message names the files and the fix."""


def listing(items: Iterable[str]) -> str:
    """``a, b, c, d, e and 7 more``: the first few items of a list for a message."""
    items = list(items)
    more = f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return ", ".join(items[:_MAX_LISTED]) + more


@dataclass(frozen=True)
class Clip:
    """One row of the output: where the clip is in the source and what it becomes."""

    member: str  # path in the source, relative to the dataset root
    filename: str  # output name, relative to prepared/audio (the stem + ".wav")
    fold: int
    target: int  # 0..n_classes-1, the index of ``category`` in the labels
    category: str
    extra: Mapping[str, str] = field(default_factory=dict)  # the adapter's extra_columns


@dataclass(frozen=True)
class Listing:
    """What ``Dataset.rows`` reads from a source."""

    clips: list[Clip]
    labels: list[str]  # category names in target order
    index: str | None = None  # member listing the clips (a metadata CSV); None: file names
    fold_names: Mapping[int, str] | None = None  # what each fold is, where a split names it


@dataclass(frozen=True)
class Structure:
    """What a complete copy holds; ``None`` where the dataset does not fix the number."""

    n_clips: int
    n_classes: int
    folds: tuple[int, ...]
    clips_per_class: int | None = None
    clips_per_speaker: int | None = None  # counts Clip.extra["speaker"]


class Dataset(abc.ABC):
    """An adapter between one dataset's published layout and the fetch stage's output.

    Subclasses are frozen dataclasses: the fields (checksum file, expected size) default to
    the real release, and tests may ``dataclasses.replace`` them for crafted archives.
    """

    name: ClassVar[str]  # the data.dataset value
    url: ClassVar[str]  # official download, for messages and the documentation
    splits: ClassVar[tuple[str, ...]] = ("official",)  # supported data.split values
    extra_columns: ClassVar[tuple[str, ...]] = ()  # meta.csv columns after category
    archive_md5: str | None = None  # md5 of the file an http(s) source downloads; None: unknown

    @abc.abstractmethod
    def locate(self, source: Source) -> str:
        """Find the dataset in ``source``, set ``source.root``, return the layout's name.

        Raises DatasetError saying what was expected when ``source`` does not hold it.
        """

    @abc.abstractmethod
    def rows(self, source: Source, layout: str, split: str) -> Listing:
        """The clips of ``layout`` with their folds under ``split``, and the labels.

        Checks the metadata (columns, values, integrity) but not the counts, which
        ``structure`` states and the caller checks.
        """

    @abc.abstractmethod
    def structure(self, layout: str, split: str) -> Structure:
        """What a complete copy of the dataset holds under ``split``."""

    def verify(self, source: Source, layout: str, files: Mapping[str, Path]) -> list[str]:
        """Check the integrity of the clips (``files``: member -> local path) beyond decoding.

        Returns the checks done, for dataset.json; raises DatasetError naming bad files.
        """
        return []

    def not_found(self, source: Source, wanted: str) -> DatasetError:
        """The error for a source that does not hold this dataset in any known layout."""
        return DatasetError(
            f"{source.archive}: no {self.name} dataset found (expected {wanted}); set "
            f"data.source to a copy of {self.name}, or data.dataset to what {source.archive} holds"
        )


def check_structure(
    data: Listing, expected: Structure, where: str, fix: str
) -> None:
    """Counts of clips, classes, clips per class and speaker, folds; DatasetError if off."""
    clips = data.clips
    problems = []
    if len(clips) != expected.n_clips:
        problems.append(f"{len(clips)} clips, expected {expected.n_clips}")
    per_class = Counter(clip.category for clip in clips)
    if len(per_class) != expected.n_classes or len(data.labels) != expected.n_classes:
        problems.append(f"{len(per_class)} classes, expected {expected.n_classes}")
    if expected.clips_per_class is not None:
        problems += [
            f"category {name!r} has {count} clips, expected {expected.clips_per_class}"
            for name, count in sorted(per_class.items())
            if count != expected.clips_per_class
        ]
    if expected.clips_per_speaker is not None:
        per_speaker = Counter(clip.extra["speaker"] for clip in clips)
        problems += [
            f"speaker {name!r} has {count} clips, expected {expected.clips_per_speaker}"
            for name, count in sorted(per_speaker.items())
            if count != expected.clips_per_speaker
        ]
    folds = sorted({clip.fold for clip in clips})
    if tuple(folds) != expected.folds:
        problems.append(f"folds {folds}, expected {list(expected.folds)}")
    wrong = [c.filename for c in clips if data.labels[c.target : c.target + 1] != [c.category]]
    if wrong:
        problems.append(f"targets that do not match the labels: {listing(wrong)}")
    duplicates = [name for name, count in Counter(c.filename for c in clips).items() if count > 1]
    if duplicates:
        problems.append(f"duplicate clips {listing(sorted(duplicates))}")
    if problems:
        raise DatasetError(f"{where}: {listing(problems)}; {fix}")


def read_metadata_csv(path: Path, where: str, columns: Iterable[str], layout: str,
                      fix: str) -> list[dict[str, str]]:
    """Rows of a dataset's metadata CSV; a missing column is a DatasetError naming the header."""
    columns = list(columns)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise DatasetError(
                f"{where}: missing column(s) {', '.join(missing)} (header {reader.fieldnames}); "
                f"expected the {layout} header with {', '.join(columns)}; {fix}"
            )
        return list(reader)


def read_checksums(path: Path, algorithm: str = "md5") -> dict[str, str]:
    """``md5sum``/``sha256sum`` format (``<hex>  <relative path>``) -> {relative path: hex}."""
    if algorithm not in _HEX_DIGITS:
        raise ValueError(f"algorithm must be one of {sorted(_HEX_DIGITS)}, got {algorithm!r}")
    line_format = re.compile(rf"([0-9a-fA-F]{{{_HEX_DIGITS[algorithm]}}}) [ *](.+)")
    sums = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            match = line_format.fullmatch(line)
            if match is None:
                raise ValueError(f"{path}:{number}: not an {algorithm}sum line: {line!r}")
            sums[match[2]] = match[1].lower()
    return sums


def file_digest(path: Path, algorithm: str) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()
