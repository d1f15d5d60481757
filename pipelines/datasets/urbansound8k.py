"""UrbanSound8K (J. Salamon, C. Jacoby, J. P. Bello, 2014; CC BY-NC 3.0) as a fetch-stage adapter.

Covers the layout of the official archive (``URL``, a 6 GB tar.gz on Zenodo, record 1203745):
``[<top>/]audio/fold{1..10}/<slice_file_name>`` + ``[<top>/]metadata/UrbanSound8K.csv`` with
the columns ``COLUMNS``, from that URL, a local .tar.gz/.tgz/.zip or a directory (``<top>`` is
``UrbanSound8K/`` in the archive). 8732 clips of at most 4 s, 10 classes, folds 1-10; the
clips keep their Freesound rates, bit depths (8/16/24-bit, 32-bit float) and channel counts,
which ``client.audio`` decodes, downmixes and resamples.

Integrity: a download is checked against the archive's md5 (``ARCHIVE_MD5``, as recorded by
soundata's urbansound8k loader, see pipelines/checksums/NOTICE.md). No per-clip checksums are
published, so a local copy is checked for structure (every CSV row well formed, its clip
present, 8732 rows, 10 classes, folds 1-10) and by decoding every clip.

Labels: the ``class`` names in ``classID`` order (``CLASSES``); the target is ``classID``.
Folds: the dataset's own ten (the only split). Stems are ``slice_file_name``; meta.csv adds
the Freesound recording id ``fsID`` and ``salience`` (1 foreground, 2 background). Does not
cover: the ``start``/``end`` offsets (the clips are already cut) or the Freesound credits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from pipelines.datasets.base import Clip, Dataset, DatasetError, Listing, Structure, read_metadata_csv
from pipelines.datasets.sources import Source

ARCHIVE_MD5 = "9aa69802bbf37fb986f71ec1483a196e"  # UrbanSound8K.tar.gz, Zenodo record 1203745
N_CLIPS = 8732
FOLDS = tuple(range(1, 11))
CLASSES = (
    "air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling",
    "engine_idling", "gun_shot", "jackhammer", "siren", "street_music",
)  # fmt: skip
COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")
METADATA = "metadata/UrbanSound8K.csv"

_MARKER = re.compile(r"^((?:[^/]+/)?)metadata/UrbanSound8K\.csv$")  # group 1: dataset root
_WAV_NAME = re.compile(r"^\w[\w.-]*\.wav$")


@dataclass(frozen=True)
class UrbanSound8K(Dataset):
    """UrbanSound8K 1.0: 8732 clips, 10 classes, folds 1-10; the archive's md5 on download.

    ``expected_clips`` and ``archive_md5`` are the real release's; tests replace them for
    crafted archives.
    """

    name: ClassVar[str] = "urbansound8k"
    url: ClassVar[str] = "https://zenodo.org/records/1203745/files/UrbanSound8K.tar.gz"
    extra_columns: ClassVar[tuple[str, ...]] = ("fsID", "salience")
    expected_clips: int = N_CLIPS
    archive_md5: str | None = ARCHIVE_MD5

    def locate(self, source: Source) -> str:
        roots = {match[1] for name in source.names if (match := _MARKER.match(name))}
        if not roots:
            raise self.not_found(
                source, f"[<top>/]{METADATA} with [<top>/]audio/fold<1-10>/*.wav"
            )
        source.set_root(roots, METADATA)
        return "UrbanSound8K"

    def rows(self, source: Source, layout: str, split: str) -> Listing:
        csv_path = source.local([METADATA])[METADATA]
        where = source.where(METADATA)
        rows = read_metadata_csv(csv_path, where, COLUMNS, "UrbanSound8K", source.fix)
        clips = []
        for number, row in enumerate(rows, 2):
            try:
                name, fold, class_id = row["slice_file_name"], row["fold"], row["classID"]
                if not _WAV_NAME.fullmatch(name or ""):
                    raise ValueError(f"slice_file_name {name!r} is not a .wav file name")
                if not fold or not fold.isdigit() or int(fold) not in FOLDS:
                    raise ValueError(f"fold {fold!r} out of range {FOLDS[0]}-{FOLDS[-1]}")
                if not class_id or not class_id.isdigit() or int(class_id) >= len(CLASSES):
                    raise ValueError(f"classID {class_id!r} out of range 0-{len(CLASSES) - 1}")
                if row["class"] != CLASSES[int(class_id)]:
                    raise ValueError(
                        f"class {row['class']!r} for classID {class_id}, "
                        f"expected {CLASSES[int(class_id)]!r}"
                    )
            except (TypeError, ValueError) as err:
                raise DatasetError(
                    f"{where}, line {number}: malformed row ({err}); {source.fix}"
                ) from err
            clips.append(
                Clip(
                    f"audio/fold{int(fold)}/{name}",
                    name,
                    int(fold),
                    int(class_id),
                    row["class"],
                    extra={"fsID": row["fsID"], "salience": row["salience"]},
                )
            )
        return Listing(clips, list(CLASSES), index=METADATA)

    def structure(self, layout: str, split: str) -> Structure:
        return Structure(n_clips=self.expected_clips, n_classes=len(CLASSES), folds=FOLDS)
