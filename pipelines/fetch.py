"""DVC stage ``fetch``: get ESC-50 (or its ESC-10 subset), check it and write it normalised.

Covers: ``data.source`` as an http(s) URL (streamed to ``data/downloads``, reused once
complete), a local .zip or a local directory, in one of two layouts:

- ESC-50 v2 (``<top>/audio/*.wav`` + ``<top>/meta/esc50.csv``): zip CRCs checked, and the md5
  of the CSV and of every clip used checked against ``checksums/esc50.md5``; ``esc10`` takes
  the 400 rows with ``esc10=True``.
- the original ESC-10 release (``[<top>/][audio/]<NNN - Class name>/<fold>-<id>-<take>.ogg``),
  for ``esc10`` only. No checksums exist for it: structure and decoding are checked.

Counts, classes and folds are validated and every clip is decoded (via ``client.audio``)
before anything appears under ``data/prepared``, which is written all at once. Does not
cover: features, new splits, or other datasets.

Output, the contract with the next stage:

- ``audio/<stem>.wav``: mono PCM_16 at ``sample_rate``, ``round(clip_seconds * sample_rate)``
  samples (cropped at the end or zero-padded);
- ``meta.csv``: ``filename,fold,target,category``, sorted by fold then filename;
- ``labels.txt``: category names in target order; ``dataset.json``: what was written, from what.

Stems are ESC-50's, ``{fold}-{freesound id}-{take}-{ESC-50 target}``, for both layouts, and
ESC-10 targets 0..9 follow the ESC-50 target order, so either source gives the same meta.csv.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from client.audio import fix_length, load_audio
from pipelines import paths
from pipelines.params import from_dict, load_params

log = logging.getLogger(__name__)

ESC50_CHECKSUMS = Path(__file__).parent / "checksums" / "esc50.md5"
CLIPS_PER_CLASS = 40
FOLDS = (1, 2, 3, 4, 5)
N_CLASSES = {"esc50": 50, "esc10": 10}
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

_ESC50_MARKER = re.compile(r"^((?:[^/]+/)?)meta/esc50\.csv$")  # group 1: dataset root
_ESC10_CLIP = re.compile(r"^((?:[^/]+/)?(?:audio/)?)(\d{3} - ([^/]+))/([^/]+\.ogg)$")
_ESC10_NAME = re.compile(r"^(\d+)-(\d+)-([A-Za-z]+)\.ogg$")
_WAV_NAME = re.compile(r"^\w[\w.-]*\.wav$")
_MAX_LISTED = 5  # problems named in one message


class DatasetError(ValueError):
    """The source is not a complete, intact dataset; the message names the files and the fix."""


@dataclass(frozen=True)
class DataConfig:
    """``params.yaml: data``; every key is required (params.yaml is the one place for values)."""

    dataset: str  # "esc50" (2000 clips, 50 classes) or "esc10" (400 clips, 10 classes)
    source: str  # http(s) URL of the ESC-50 zip, a local .zip, or a local directory
    sample_rate: int  # Hz of the written clips
    clip_seconds: float  # length of the written clips

    def __post_init__(self) -> None:
        if self.dataset not in N_CLASSES:
            raise ValueError(
                f"data.dataset must be one of {sorted(N_CLASSES)}, got {self.dataset!r}"
            )
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValueError(f"data.source must be a URL or a path, got {self.source!r}")
        if (
            isinstance(self.sample_rate, bool)
            or not isinstance(self.sample_rate, int)
            or self.sample_rate <= 0
        ):
            raise ValueError(
                f"data.sample_rate must be a positive integer, got {self.sample_rate!r}"
            )
        if (
            isinstance(self.clip_seconds, bool)
            or not isinstance(self.clip_seconds, (int, float))
            or round(self.clip_seconds * self.sample_rate) < 1
        ):
            raise ValueError(
                "data.clip_seconds must be positive (one sample at least), "
                f"got {self.clip_seconds!r}"
            )

    @property
    def n_samples(self) -> int:
        return round(self.clip_seconds * self.sample_rate)


@dataclass(frozen=True)
class Clip:
    member: str  # path in the source, relative to the dataset root
    filename: str  # output name, relative to prepared/audio
    fold: int
    target: int  # output target
    category: str


def _listing(items: Iterable[str]) -> str:
    items = list(items)
    more = f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return ", ".join(items[:_MAX_LISTED]) + more


def is_url(source: str) -> bool:
    return urllib.parse.urlsplit(source).scheme in ("http", "https")


def download_name(url: str) -> str:
    """File name of a URL's download: its path made file-name safe (host if no path)."""
    parts = urllib.parse.urlsplit(url)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", parts.path.strip("/") or parts.netloc)


def download(
    url: str, downloads: Path, *, chunk_bytes: int = 1 << 20, timeout_s: float = 60.0
) -> Path:
    """Stream ``url`` to ``downloads/<name>`` (via ``<name>.part``); reuse a finished download."""
    target = downloads / download_name(url)
    if target.is_file():
        log.info("using the existing download %s (delete it to download again)", target)
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    log.info("downloading %s to %s", url, target)
    request = urllib.request.Request(url, headers={"User-Agent": "esc-pipeline-fetch"})
    done, size = 0, None
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response, part.open("wb") as out:
            length = response.headers["Content-Length"]  # None when the server streams
            size = int(length) if length else None
            with tqdm(total=size, unit="B", unit_scale=True, desc=target.name, disable=None) as bar:
                while chunk := response.read(chunk_bytes):
                    out.write(chunk)
                    bar.update(len(chunk))
                    done += len(chunk)
    except (OSError, http.client.HTTPException) as err:
        part.unlink(missing_ok=True)
        raise DatasetError(
            f"could not download {url} ({err!r}); check the address and the network, "
            "or set data.source to a local .zip or directory"
        ) from err
    if size is not None and done != size:
        part.unlink(missing_ok=True)
        raise DatasetError(
            f"download of {url} ended after {done} of {size} bytes; run the fetch stage again"
        )
    os.replace(part, target)
    return target


def read_checksums(path: Path) -> dict[str, str]:
    """``md5sum`` format (``<md5>  <relative path>``) -> {relative path: md5}."""
    sums = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            match = re.fullmatch(r"([0-9a-fA-F]{32}) [ *](.+)", line)
            if match is None:
                raise ValueError(f"{path}:{number}: not an md5sum line: {line!r}")
            sums[match[2]] = match[1].lower()
    return sums


def _md5(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


class _Source:
    """A local directory or zip archive holding a dataset under ``root`` (``""`` or ``"<top>/"``).

    ``names`` are the POSIX paths of its files, at most 4 levels deep; members are paths
    relative to ``root``, set once the layout is known.
    """

    def __init__(self, archive: Path, fix: str, workdir: Path) -> None:
        self.archive, self.fix, self.workdir = archive, fix, workdir
        self.is_zip = archive.is_file()
        self.names = self._zip_names() if self.is_zip else self._dir_names()
        self.root = ""

    def _dir_names(self) -> list[str]:
        names = []
        for dirpath, dirnames, filenames in os.walk(self.archive):
            rel = Path(dirpath).relative_to(self.archive)
            if len(rel.parts) >= 3:
                dirnames.clear()
            names += [(rel / name).as_posix() for name in filenames]
        return names

    def _zip_names(self) -> list[str]:
        try:
            with zipfile.ZipFile(self.archive) as zf:
                bad = zf.testzip()  # reads every member, checking its CRC
                names = [info.filename for info in zf.infolist() if not info.is_dir()]
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as err:
            raise DatasetError(
                f"{self.archive}: not a readable zip archive ({err}); {self.fix}"
            ) from err
        if bad is not None:
            raise DatasetError(
                f"{self.archive}: {bad} fails its CRC check (corrupt archive); {self.fix}"
            )
        return names

    def set_root(self, roots: set[str], what: str) -> None:
        if len(roots) > 1:
            raise DatasetError(
                f"{self.archive}: {what} found in several folders ({_listing(sorted(roots))}); "
                "point data.source at one copy of the dataset"
            )
        self.root = roots.pop()

    def where(self, member: str) -> str:
        """A member's name for messages: its path, or ``<zip>:<path in the zip>``."""
        name = self.root + member
        return f"{self.archive}:{name}" if self.is_zip else str(self.archive / name)

    def missing(self, members: Iterable[str]) -> list[str]:
        present = set(self.names)
        return [self.where(member) for member in members if self.root + member not in present]

    def local(self, members: Iterable[str]) -> dict[str, Path]:
        """Paths on disk of members: the files themselves, or copies extracted to workdir."""
        if not self.is_zip:
            return {member: self.archive / self.root / member for member in members}
        files = {}
        with zipfile.ZipFile(self.archive) as zf:
            for member in members:
                if ".." in PurePosixPath(member).parts:
                    raise DatasetError(f"{self.where(member)}: unsafe member name; {self.fix}")
                files[member] = dest = self.workdir / member
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(self.root + member) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out)
        return files

    def verify_md5(self, files: dict[str, Path], checksums: dict[str, str]) -> None:
        unlisted = [self.where(member) for member in files if member not in checksums]
        if unlisted:
            raise DatasetError(
                f"{len(unlisted)} file(s) have no ESC-50 v2 checksum: {_listing(unlisted)}; "
                f"this is not the ESC-50 v2 release; {self.fix}"
            )
        bad = [
            f"{self.where(member)} (md5 {digest}, expected {checksums[member]})"
            for member, path in files.items()
            if (digest := _md5(path)) != checksums[member]
        ]
        if bad:
            raise DatasetError(
                f"{len(bad)} file(s) fail the md5 check: {_listing(bad)}; "
                f"the data is corrupt or modified; {self.fix}"
            )


def _check_counts(clips: list[Clip], n_classes: int, where: str, fix: str) -> None:
    problems = []
    if len(clips) != n_classes * CLIPS_PER_CLASS:
        problems.append(f"{len(clips)} clips, expected {n_classes * CLIPS_PER_CLASS}")
    per_class = Counter(clip.category for clip in clips)
    if len(per_class) != n_classes:
        problems.append(f"{len(per_class)} classes, expected {n_classes}")
    problems += [
        f"category {name!r} has {count} clips, expected {CLIPS_PER_CLASS}"
        for name, count in sorted(per_class.items())
        if count != CLIPS_PER_CLASS
    ]
    folds = sorted({clip.fold for clip in clips})
    if tuple(folds) != FOLDS:
        problems.append(f"folds {folds}, expected {list(FOLDS)}")
    duplicates = [name for name, count in Counter(c.filename for c in clips).items() if count > 1]
    if duplicates:
        problems.append(f"duplicate clips {_listing(sorted(duplicates))}")
    if problems:
        raise DatasetError(f"{where}: {_listing(problems)}; {fix}")


def _esc50_clips(
    source: _Source, dataset: str, checksums: dict[str, str]
) -> tuple[list[Clip], list[str], dict[str, Path]]:
    """Rows of meta/esc50.csv for ``dataset``, checked, with the local path of every clip."""
    csv_path = source.local([ESC50_CSV])[ESC50_CSV]
    where = source.where(ESC50_CSV)
    source.verify_md5({ESC50_CSV: csv_path}, checksums)
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [column for column in ESC50_COLUMNS if column not in (reader.fieldnames or ())]
        if missing:
            raise DatasetError(
                f"{where}: missing column(s) {', '.join(missing)} (header {reader.fieldnames}); "
                f"expected the ESC-50 header with {', '.join(ESC50_COLUMNS)}; {source.fix}"
            )
        rows = list(reader)
    selected = []  # (filename, fold, ESC-50 target, category)
    for number, row in enumerate(rows, 2):
        try:
            if not _WAV_NAME.fullmatch(row["filename"]) or row["esc10"] not in ("True", "False"):
                raise ValueError(f"filename {row['filename']!r}, esc10 {row['esc10']!r}")
            if dataset == "esc50" or row["esc10"] == "True":
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
        raise DatasetError(f"{where}: categories and targets are not one-to-one; {source.fix}")
    if dataset == "esc10" and to_target != ESC10_TARGETS:
        raise DatasetError(
            f"{where}: the esc10=True rows have categories/targets {to_target}, "
            f"expected {ESC10_TARGETS}; {source.fix}"
        )
    if dataset == "esc50" and sorted(to_target.values()) != list(range(len(to_target))):
        raise DatasetError(f"{where}: targets are not 0..{len(to_target) - 1}; {source.fix}")
    labels = sorted(to_target, key=to_target.__getitem__)
    clips = [
        Clip(f"audio/{name}", name, fold, labels.index(category), category)
        for name, fold, _, category in selected
    ]
    _check_counts(clips, N_CLASSES[dataset], where, source.fix)
    absent = source.missing(clip.member for clip in clips)
    if absent:
        raise DatasetError(
            f"{len(absent)} clip(s) listed in {ESC50_CSV} are missing: {_listing(absent)}; "
            f"{source.fix}"
        )
    files = source.local(clip.member for clip in clips)
    source.verify_md5(files, checksums)
    return clips, labels, files


def _esc10_release_clips(source: _Source) -> tuple[list[Clip], list[str], dict[str, Path]]:
    """Clips of the original ESC-10 release: class from the folder, fold from the name."""
    matches = [match for name in source.names if (match := _ESC10_CLIP.match(name))]
    source.set_root({match[1] for match in matches}, "ESC-10 class folders")
    clips, problems = [], []
    for match in matches:
        member, cls, file = f"{match[2]}/{match[4]}", match[3], match[4]
        parsed = _ESC10_NAME.match(file)
        if cls not in ESC10_FOLDERS or parsed is None:
            problems.append(source.where(member))
            continue
        category = ESC10_FOLDERS[cls]
        fold, src_id, take = parsed.groups()
        filename = f"{int(fold)}-{src_id}-{take}-{ESC10_TARGETS[category]}.wav"
        target = ESC10_CATEGORIES.index(category)
        clips.append(Clip(member, filename, int(fold), target, category))
    if problems:
        raise DatasetError(
            f"not ESC-10 release files (class folders are {', '.join(sorted(ESC10_FOLDERS))}, "
            f"names <fold>-<id>-<take>.ogg): {_listing(problems)}; {source.fix}"
        )
    _check_counts(clips, N_CLASSES["esc10"], source.where(""), source.fix)
    return clips, list(ESC10_CATEGORIES), source.local(clip.member for clip in clips)


def _convert(src: Path, dst: Path, sample_rate: int, n_samples: int) -> tuple[int, str | None]:
    """Worker: decode ``src``, write it fixed-length to ``dst``; (length before, error)."""
    try:
        wave = load_audio(src, sample_rate)  # (samples,) float32
    except ValueError as err:  # client.audio.AudioError names src; the caller names the clip
        return 0, str(err).removeprefix(f"{src}: ")
    sf.write(dst, np.clip(fix_length(wave, n_samples), -1.0, 1.0), sample_rate, subtype="PCM_16")
    return wave.shape[0], None


def _write_audio(
    clips: list[Clip], files: dict[str, Path], audio_dir: Path, config: DataConfig, source: _Source
) -> tuple[int, int]:
    """Decode every clip into ``audio_dir`` in a process pool; returns (cropped, padded)."""
    audio_dir.mkdir(parents=True)
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        results = pool.map(
            _convert,
            [files[clip.member] for clip in clips],
            [audio_dir / clip.filename for clip in clips],
            repeat(config.sample_rate),
            repeat(config.n_samples),
            chunksize=16,
        )
        bar = tqdm(results, total=len(clips), desc="decode", unit="clip", disable=None)
        lengths, errors = zip(*bar, strict=True)
    bad = [f"{source.where(c.member)} ({e})" for c, e in zip(clips, errors, strict=True) if e]
    if bad:
        raise DatasetError(f"{len(bad)} clip(s) do not decode: {_listing(bad)}; {source.fix}")
    n = config.n_samples
    return sum(length > n for length in lengths), sum(length < n for length in lengths)


def _resolve(source: str, downloads: Path) -> tuple[Path, str]:
    """(local file or directory of ``data.source``, what to do if it proves broken)."""
    if is_url(source):
        archive = download(source, downloads)
        return archive, f"delete {archive} and run the fetch stage again"
    archive = Path(source).expanduser()
    if not archive.exists():
        raise DatasetError(
            f"data.source {source!r}: no such file or directory; "
            "set it to an http(s) URL, a .zip or a directory holding the dataset"
        )
    return archive, f"replace {archive} with an unmodified copy, or set data.source to its URL"


def _find_dataset(
    source: _Source, dataset: str, checksums: Path
) -> tuple[str, list[Clip], list[str], dict[str, Path]]:
    """(layout, clips, labels, local path of each clip) of the dataset in ``source``, checked."""
    roots = {match[1] for name in source.names if (match := _ESC50_MARKER.match(name))}
    if roots:
        source.set_root(roots, ESC50_CSV)
        return "ESC-50", *_esc50_clips(source, dataset, read_checksums(checksums))
    if dataset == "esc10" and any(_ESC10_CLIP.match(name) for name in source.names):
        return "ESC-10 release", *_esc10_release_clips(source)
    wanted = f"[<top>/]{ESC50_CSV} with [<top>/]audio/*.wav"
    if dataset == "esc10":
        wanted += ", or the ESC-10 release folders [<top>/][audio/]<NNN - Class name>/*.ogg"
    raise DatasetError(
        f"{source.archive}: no {dataset} dataset found (expected {wanted}); set data.source "
        f"to a copy of {dataset}, or data.dataset to what {source.archive} holds"
    )


def _write_tables(out: Path, clips: list[Clip], labels: list[str], info: dict[str, Any]) -> None:
    """meta.csv (sorted by fold, filename), labels.txt and dataset.json into ``out``."""
    with (out / "meta.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["filename", "fold", "target", "category"])
        for clip in sorted(clips, key=lambda clip: (clip.fold, clip.filename)):
            writer.writerow([clip.filename, clip.fold, clip.target, clip.category])
    (out / "labels.txt").write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")
    (out / "dataset.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def prepare(
    config: DataConfig,
    *,
    checksums: Path = ESC50_CHECKSUMS,
    downloads: Path = paths.DOWNLOADS,
    prepared: Path = paths.PREPARED,
) -> dict[str, Any]:
    """Fetch, check and write the dataset to ``prepared``, replacing it only on success.

    ``checksums``: md5sum file of ESC-50 v2, paths relative to the ESC-50 root. Everything is
    built in ``<prepared>.tmp`` (removed on failure) and renamed into place at the end.
    Returns {dataset, n_clips, n_classes, cropped, padded}. Raises DatasetError.
    """
    archive, fix = _resolve(config.source, downloads)
    work = prepared.with_name(prepared.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)  # left by an interrupted run
    out = work / "prepared"
    try:
        source = _Source(archive, fix, work / "source")
        layout, clips, labels, files = _find_dataset(source, config.dataset, checksums)
        log.info("%s: %s layout, %d clips, %d classes", archive, layout, len(clips), len(labels))
        cropped, padded = _write_audio(clips, files, out / "audio", config, source)
        info = {
            "dataset": config.dataset,
            "source": config.source,
            "archive": str(archive),
            "layout": layout,
            "md5_checked": layout == "ESC-50",
            "sample_rate": config.sample_rate,
            "clip_seconds": config.clip_seconds,
            "n_samples": config.n_samples,
            "n_clips": len(clips),
            "n_classes": len(labels),
            "folds": list(FOLDS),
            "cropped": cropped,
            "padded": padded,
            "config": dataclasses.asdict(config),
        }
        _write_tables(out, clips, labels, info)
        if prepared.exists():
            os.replace(prepared, work / "old")
        os.replace(out, prepared)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("wrote %s: %d clips (%d cropped, %d padded)", prepared, len(clips), cropped, padded)
    return {key: info[key] for key in ("dataset", "n_clips", "n_classes", "cropped", "padded")}


def main(params: Mapping[str, Any]) -> dict[str, Any]:
    """Run the stage; reads only ``params["data"]`` (see DataConfig)."""
    if "data" not in params:
        raise ValueError(
            "params has no 'data' section (dataset, source, sample_rate, clip_seconds)"
        )
    return prepare(from_dict(DataConfig, params["data"], where="params: data"))


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        main(load_params())
    except DatasetError as err:
        log.error("%s", err)
        raise SystemExit(1) from None
