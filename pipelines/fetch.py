"""DVC stage ``fetch``: get one dataset, check it and write it normalised.

Covers the datasets of ``pipelines.datasets`` (``data.dataset``: ``esc50``, ``esc10``,
``fsdd``, ``urbansound8k``), each an adapter behind one interface (``datasets.base.Dataset``)
that knows its layouts, integrity checks, expected structure, labels and splits. ``data.source``
is an http(s) URL (streamed to ``data/downloads``, reused once complete, checked against the
archive's md5 where the adapter knows it), a local .zip/.tar.gz or a local directory;
``data.split`` picks the folds (``official``: the dataset's own; ``speaker``: leave one speaker
out, for datasets with speakers).

Counts, classes and folds are validated and every clip is decoded (via ``client.audio``)
before anything appears under ``data/prepared``, which is written all at once. Does not
cover: features, or the datasets' own documentation of labels and folds (see each adapter).

Output, the contract with the next stage:

- ``audio/<stem>.wav``: mono PCM_16 at ``sample_rate``, ``round(clip_seconds * sample_rate)``
  samples (cropped at the end or zero-padded);
- ``meta.csv``: ``filename,fold,target,category`` then the adapter's extra columns (e.g.
  ``speaker``), sorted by fold then filename;
- ``labels.txt``: category names in target order; ``dataset.json``: what was written, from
  what, under which split, with which checks.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import shutil
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from client.audio import fix_length, load_audio
from pipelines import paths
from pipelines.datasets import DATASETS, SPLITS, Clip, Dataset, DatasetError, Listing
from pipelines.datasets.base import check_structure, listing
from pipelines.datasets.sources import Source, is_url, resolve
from pipelines.params import from_dict, load_params

__all__ = ["DataConfig", "DatasetError", "collect", "main", "prepare"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataConfig:
    """``params.yaml: data``; every key is required (params.yaml is the one place for values)."""

    dataset: str  # a key of pipelines.datasets.DATASETS: esc50, esc10, fsdd, urbansound8k
    source: str  # http(s) URL of the dataset's archive, a local archive, or a local directory
    split: str  # "official" (the dataset's own folds) or "speaker" (leave one speaker out)
    sample_rate: int  # Hz of the written clips
    clip_seconds: float  # length of the written clips

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(
                f"data.dataset must be one of {sorted(DATASETS)}, got {self.dataset!r}"
            )
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValueError(f"data.source must be a URL or a path, got {self.source!r}")
        if self.split not in SPLITS:
            raise ValueError(f"data.split must be one of {list(SPLITS)}, got {self.split!r}")
        splits = DATASETS[self.dataset].splits
        if self.split not in splits:
            raise ValueError(
                f"data.split {self.split!r} is not available for {self.dataset} (it has no "
                f"speakers); its splits: {', '.join(splits)}"
            )
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


def collect(
    adapter: Dataset, source: Source, split: str
) -> tuple[str, Listing, dict[str, Path], list[str]]:
    """(layout, rows, local path of every clip, the adapter's checks) of ``adapter`` in ``source``.

    Raises DatasetError at the first problem: layout not found, bad metadata, wrong counts,
    missing clips, failed integrity checks.
    """
    layout = adapter.locate(source)
    rows = adapter.rows(source, layout, split)
    where = source.where(rows.index or "")
    check_structure(rows, adapter.structure(layout, split), where, source.fix)
    absent = source.missing(clip.member for clip in rows.clips)
    if absent:
        raise DatasetError(
            f"{len(absent)} clip(s) listed in {rows.index or 'the file names'} are missing: "
            f"{listing(absent)}; "
            f"{source.fix}"
        )
    files = source.local(clip.member for clip in rows.clips)
    return layout, rows, files, adapter.verify(source, layout, files)


def _convert(src: Path, dst: Path, sample_rate: int, n_samples: int) -> tuple[int, str | None]:
    """Worker: decode ``src``, write it fixed-length to ``dst``; (length before, error)."""
    try:
        wave = load_audio(src, sample_rate)  # (samples,) float32
    except ValueError as err:  # client.audio.AudioError names src; the caller names the clip
        return 0, str(err).removeprefix(f"{src}: ")
    sf.write(dst, np.clip(fix_length(wave, n_samples), -1.0, 1.0), sample_rate, subtype="PCM_16")
    return wave.shape[0], None


def _write_audio(
    clips: list[Clip], files: dict[str, Path], audio_dir: Path, config: DataConfig, source: Source
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
        raise DatasetError(f"{len(bad)} clip(s) do not decode: {listing(bad)}; {source.fix}")
    n = config.n_samples
    return sum(length > n for length in lengths), sum(length < n for length in lengths)


def _write_tables(
    out: Path, clips: list[Clip], labels: list[str], extra: tuple[str, ...], info: dict[str, Any]
) -> None:
    """meta.csv (sorted by fold, filename), labels.txt and dataset.json into ``out``."""
    with (out / "meta.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["filename", "fold", "target", "category", *extra])
        for clip in sorted(clips, key=lambda clip: (clip.fold, clip.filename)):
            writer.writerow(
                [clip.filename, clip.fold, clip.target, clip.category]
                + [clip.extra[column] for column in extra]
            )
    (out / "labels.txt").write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")
    (out / "dataset.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def prepare(
    config: DataConfig,
    *,
    adapter: Dataset | None = None,
    downloads: Path = paths.DOWNLOADS,
    prepared: Path = paths.PREPARED,
) -> dict[str, Any]:
    """Fetch, check and write the dataset to ``prepared``, replacing it only on success.

    ``adapter``: the dataset's adapter, by default ``DATASETS[config.dataset]`` (the real
    release's checksums and sizes); tests pass one configured for crafted archives. Everything
    is built in ``<prepared>.tmp`` (removed on failure) and renamed into place at the end.
    Returns {dataset, n_clips, n_classes, cropped, padded}. Raises DatasetError.
    """
    adapter = DATASETS[config.dataset] if adapter is None else adapter
    if adapter.name != config.dataset or config.split not in adapter.splits:
        raise ValueError(
            f"adapter {adapter.name} (splits {adapter.splits}) cannot prepare "
            f"{config.dataset} with split {config.split!r}"
        )
    archive, fix = resolve(config.source, downloads, adapter.archive_md5)
    archive_md5_checked = is_url(config.source) and adapter.archive_md5 is not None
    work = prepared.with_name(prepared.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)  # left by an interrupted run
    out = work / "prepared"
    try:
        source = Source(archive, fix, work / "source")
        layout, rows, files, verified = collect(adapter, source, config.split)
        checks = [
            *(["zip CRC of every member"] if source.kind == "zip" else []),
            *([f"archive md5 {adapter.archive_md5}"] if archive_md5_checked else []),
            *verified,
            "structure (counts, classes, folds)",
            "every clip decodes",
        ]
        n_clips, n_classes = len(rows.clips), len(rows.labels)
        log.info("%s: %s layout, %d clips, %d classes", archive, layout, n_clips, n_classes)
        cropped, padded = _write_audio(rows.clips, files, out / "audio", config, source)
        info = {
            "dataset": config.dataset,
            "split": config.split,
            "source": config.source,
            "archive": str(archive),
            "official_url": adapter.url,
            "layout": layout,
            "checks": checks,
            "clip_checksums_checked": bool(verified),
            "archive_md5_checked": archive_md5_checked,
            "sample_rate": config.sample_rate,
            "clip_seconds": config.clip_seconds,
            "n_samples": config.n_samples,
            "n_clips": len(rows.clips),
            "n_classes": len(rows.labels),
            "folds": sorted({clip.fold for clip in rows.clips}),
            "fold_names": {str(k): v for k, v in sorted((rows.fold_names or {}).items())},
            "cropped": cropped,
            "padded": padded,
            "config": dataclasses.asdict(config),
        }
        _write_tables(out, rows.clips, rows.labels, adapter.extra_columns, info)
        if prepared.exists():
            os.replace(prepared, work / "old")
        os.replace(out, prepared)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("wrote %s: %d clips (%d cropped, %d padded)", prepared, n_clips, cropped, padded)
    return {key: info[key] for key in ("dataset", "n_clips", "n_classes", "cropped", "padded")}


def main(params: Mapping[str, Any]) -> dict[str, Any]:
    """Run the stage; reads only ``params["data"]`` (see DataConfig)."""
    if "data" not in params:
        raise ValueError(
            "params has no 'data' section (dataset, source, split, sample_rate, clip_seconds)"
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
