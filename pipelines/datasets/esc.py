"""ESC-50 and its ESC-10 subset (K. J. Piczak, 2015), as fetch-stage adapters.

Covers two layouts:

- ESC-50 v2 (``[<top>/]audio/*.wav`` + ``[<top>/]meta/esc50.csv``, the official archive
  https://github.com/karolpiczak/ESC-50/archive/master.zip): the md5 of the CSV and of every
  clip used is checked against ``checksums/esc50.md5``; ``esc10`` takes the 400 rows with
  ``esc10=True``.
- the original ESC-10 release (``[<top>/][audio/]<NNN - Class name>/<fold>-<id>-<take>.ogg``),
  for ``esc10`` only. No checksums exist for it: structure and decoding are checked.

Labels: ESC-50's target order (``target`` column of esc50.csv, 0..49). ESC-10 targets 0..9
follow the ESC-50 target order of its ten classes (``ESC10_CATEGORIES``). Stems are ESC-50's,
``{fold}-{freesound id}-{take}-{ESC-50 target}``, for both layouts, so either source gives the
same meta.csv. Folds: ESC-50's own, 1-5 (the only split). Does not cover: speakers (none).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pipelines.datasets.base import CHECKSUMS, Clip, Dataset, DatasetError, Listing, Structure
from pipelines.datasets.base import listing as _listing
from pipelines.datasets.base import read_checksums, read_metadata_csv
from pipelines.datasets.sources import Source

ESC50_CHECKSUMS = CHECKSUMS / "esc50.md5"
CLIPS_PER_CLASS = 40
FOLDS = (1, 2, 3, 4, 5)
# ESC-10 categories -> ESC-50 target; the ESC-10 target is the position in this order.
ESC10_TARGETS = {
    "dog": 0, "rooster": 1, "rain": 10, "sea_waves": 11, "crackling_fire": 12,
    "crying_baby": 20, "sneezing": 21, "clock_tick": 38, "helicopter": 40, "chainsaw": 41,
}  # fmt: skip
ESC10_CATEGORIES = tuple(ESC10_TARGETS)
# Class folders of the original ESC-10 release ("NNN - Class name") -> ESC-50 category.
ESC10_FOLDERS = {
    "Dog bark": "dog", "Rooster": "rooster", "Rain": "rain", "Sea waves": "sea_waves",
    "Fire crackling": "crackling_fire", "Baby cry": "crying_baby",
    "Person sneeze": "sneezing", "Clock tick": "clock_tick", "Helicopter": "helicopter",
    "Chainsaw": "chainsaw",
}  # fmt: skip
ESC50_COLUMNS = ("filename", "fold", "target", "category", "esc10")
ESC50_CSV = "meta/esc50.csv"
ESC50_LAYOUT, ESC10_LAYOUT = "ESC-50", "ESC-10 release"

_ESC50_MARKER = re.compile(r"^((?:[^/]+/)?)meta/esc50\.csv$")  # group 1: dataset root
_ESC10_CLIP = re.compile(r"^((?:[^/]+/)?(?:audio/)?)(\d{3} - ([^/]+))/([^/]+\.ogg)$")
_ESC10_NAME = re.compile(r"^(\d+)-(\d+)-([A-Za-z]+)\.ogg$")
_WAV_NAME = re.compile(r"^\w[\w.-]*\.wav$")
_ESC50_WANTED = f"[<top>/]{ESC50_CSV} with [<top>/]audio/*.wav"


@dataclass(frozen=True)
class Esc50(Dataset):
    """ESC-50 v2: 2000 clips, 50 classes x 40, folds 1-5; md5 of every file checked."""

    name: ClassVar[str] = "esc50"
    url: ClassVar[str] = "https://github.com/karolpiczak/ESC-50/archive/master.zip"
    n_classes: ClassVar[int] = 50
    checksums: Path = ESC50_CHECKSUMS  # md5sum file, paths relative to the ESC-50 root

    def locate(self, source: Source) -> str:
        roots = {match[1] for name in source.names if (match := _ESC50_MARKER.match(name))}
        if not roots:
            raise self.not_found(source, _ESC50_WANTED)
        source.set_root(roots, ESC50_CSV)
        return ESC50_LAYOUT

    def structure(self, layout: str, split: str) -> Structure:
        return Structure(
            self.n_classes * CLIPS_PER_CLASS, self.n_classes, FOLDS, clips_per_class=CLIPS_PER_CLASS
        )

    def verify(self, source: Source, layout: str, files: Mapping[str, Path]) -> list[str]:
        if layout != ESC50_LAYOUT:
            return []
        source.verify_checksums(files, read_checksums(self.checksums), "md5", "ESC-50 v2")
        return [f"md5 of {ESC50_CSV} and of every clip ({self.checksums.name})"]

    def _selects(self, esc10: str) -> bool:
        return True

    def _check_targets(self, to_target: dict[str, int], where: str, fix: str) -> None:
        if sorted(to_target.values()) != list(range(len(to_target))):
            raise DatasetError(f"{where}: targets are not 0..{len(to_target) - 1}; {fix}")

    def rows(self, source: Source, layout: str, split: str) -> Listing:
        """Rows of meta/esc50.csv (md5-checked first) this dataset selects."""
        csv_path = source.local([ESC50_CSV])[ESC50_CSV]
        where = source.where(ESC50_CSV)
        source.verify_checksums(
            {ESC50_CSV: csv_path}, read_checksums(self.checksums), "md5", "ESC-50 v2"
        )
        rows = read_metadata_csv(csv_path, where, ESC50_COLUMNS, "ESC-50", source.fix)
        selected = []  # (filename, fold, ESC-50 target, category)
        for number, row in enumerate(rows, 2):
            try:
                if not _WAV_NAME.fullmatch(row["filename"]) or row["esc10"] not in (
                    "True",
                    "False",
                ):
                    raise ValueError(f"filename {row['filename']!r}, esc10 {row['esc10']!r}")
                if self._selects(row["esc10"]):
                    selected.append(
                        (row["filename"], int(row["fold"]), int(row["target"]), row["category"])
                    )
            except (TypeError, ValueError) as err:
                raise DatasetError(
                    f"{where}, line {number}: malformed row ({err}); {source.fix}"
                ) from err
        pairs = {(category, target) for _, _, target, category in selected}
        to_target = dict(pairs)
        if len(pairs) != len(to_target) or len(pairs) != len(set(to_target.values())):
            raise DatasetError(
                f"{where}: categories and targets are not one-to-one; {source.fix}"
            )
        self._check_targets(to_target, where, source.fix)
        labels = sorted(to_target, key=to_target.__getitem__)
        clips = [
            Clip(f"audio/{name}", name, fold, labels.index(category), category)
            for name, fold, _, category in selected
        ]
        return Listing(clips, labels, index=ESC50_CSV)


@dataclass(frozen=True)
class Esc10(Esc50):
    """ESC-10: 400 clips, 10 classes x 40, folds 1-5; from ESC-50 v2 or the ESC-10 release."""

    name: ClassVar[str] = "esc10"
    n_classes: ClassVar[int] = 10

    def locate(self, source: Source) -> str:
        if any(_ESC50_MARKER.match(name) for name in source.names):
            return super().locate(source)
        matches = [match for name in source.names if (match := _ESC10_CLIP.match(name))]
        if not matches:
            raise self.not_found(
                source,
                f"{_ESC50_WANTED}, or the ESC-10 release folders "
                "[<top>/][audio/]<NNN - Class name>/*.ogg",
            )
        source.set_root({match[1] for match in matches}, "ESC-10 class folders")
        return ESC10_LAYOUT

    def _selects(self, esc10: str) -> bool:
        return esc10 == "True"

    def _check_targets(self, to_target: dict[str, int], where: str, fix: str) -> None:
        if to_target != ESC10_TARGETS:
            raise DatasetError(
                f"{where}: the esc10=True rows have categories/targets {to_target}, "
                f"expected {ESC10_TARGETS}; {fix}"
            )

    def rows(self, source: Source, layout: str, split: str) -> Listing:
        if layout == ESC50_LAYOUT:
            return super().rows(source, layout, split)
        # The ESC-10 release: class from the folder, fold from the file name.
        clips, problems = [], []
        for name in source.names:
            match = _ESC10_CLIP.match(name)
            if match is None or match[1] != source.root:
                continue
            member, folder, file = f"{match[2]}/{match[4]}", match[3], match[4]
            parsed = _ESC10_NAME.match(file)
            if folder not in ESC10_FOLDERS or parsed is None:
                problems.append(source.where(member))
                continue
            category = ESC10_FOLDERS[folder]
            fold, src_id, take = parsed.groups()
            filename = f"{int(fold)}-{src_id}-{take}-{ESC10_TARGETS[category]}.wav"
            target = ESC10_CATEGORIES.index(category)
            clips.append(Clip(member, filename, int(fold), target, category))
        if problems:
            raise DatasetError(
                "not ESC-10 release files (class folders are "
                f"{', '.join(sorted(ESC10_FOLDERS))}, names <fold>-<id>-<take>.ogg): "
                f"{_listing(problems)}; {source.fix}"
            )
        return Listing(clips, list(ESC10_CATEGORIES))
