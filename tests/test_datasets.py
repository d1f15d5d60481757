"""Tests of the dataset adapters of the fetch stage beyond ESC (pipelines/datasets/) and data.split.

FSDD: the real copy from the shared data folder (``ESC_SHARED_DATA``, default ``../shared/data``),
end to end at 8 kHz under both splits, as a directory and as a zip of the repository layout.
UrbanSound8K: mini archives built here with the real layout and CSV columns (one tiny clip per
class and fold, in the real mix of rates, bit depths and channel counts), from a loopback HTTP
URL, a local tar.gz and a directory. Nothing leaves the machine.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import shutil
import tarfile
from collections import Counter
from collections.abc import Callable
from math import ceil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_fetch import (  # the helpers of the ESC tests, shared
    DATA,
    PREPARED,
    assert_nothing_written,
    labels,
    read_meta,
    serve,
    work,  # noqa: F401 (fixture)
    write_zip,
)

from client.audio import fix_length, load_audio
from pipelines.datasets import DATASETS, Dataset
from pipelines.datasets.base import read_checksums
from pipelines.datasets.fsdd import DIGITS, FSDD_CHECKSUMS
from pipelines.datasets.urbansound8k import ARCHIVE_MD5, CLASSES, COLUMNS
from pipelines.fetch import DataConfig, DatasetError, main, prepare

FSDD_DIR = DATA / "fsdd"
needs_fsdd = pytest.mark.skipif(
    not (FSDD_DIR / "recordings").is_dir(),
    reason=f"FSDD not found under {DATA} (set ESC_SHARED_DATA)",
)
SR = 8000
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")  # sorted
TAMPERED = "7_jackson_32.wav"


def fsdd_params(source: str | Path, split: str, clip_seconds: float = 1.0) -> dict:
    return {
        "data": {
            "dataset": "fsdd",
            "source": str(source),
            "split": split,
            "sample_rate": SR,
            "clip_seconds": clip_seconds,
        }
    }


def dataset_json() -> dict:
    return json.loads((PREPARED / "dataset.json").read_text())


# --- FSDD, the real recordings -------------------------------------------------------------


@pytest.fixture(scope="module")
def fsdd_names() -> list[str]:
    if not (FSDD_DIR / "recordings").is_dir():
        pytest.skip(f"FSDD not found under {DATA} (set ESC_SHARED_DATA)")
    return sorted(p.name for p in (FSDD_DIR / "recordings").glob("*.wav"))


def expected_fsdd_meta(names: list[str], split: str) -> list[list[str]]:
    rows = []
    for name in names:
        digit, speaker, take = name.removesuffix(".wav").split("_")
        if split == "speaker":
            fold = SPEAKERS.index(speaker) + 1
        else:
            fold = 1 if int(take) <= 4 else 2
        rows.append([name, str(fold), digit, DIGITS[int(digit)], speaker])
    return sorted(rows, key=lambda r: (int(r[1]), r[0]))


@needs_fsdd
def test_real_fsdd_official_split(work: Path, fsdd_names: list[str]) -> None:
    summary = main(fsdd_params(FSDD_DIR, "official"))
    frames = {name: sf.info(FSDD_DIR / "recordings" / name).frames for name in fsdd_names}
    assert len(fsdd_names) == 3000
    assert summary == {
        "dataset": "fsdd",
        "n_clips": 3000,
        "n_classes": 10,
        "cropped": sum(k > SR for k in frames.values()),
        "padded": sum(k < SR for k in frames.values()),
    }
    assert summary["cropped"] > 0 and summary["padded"] > 2500  # 0.14 s .. 2.3 s, mostly < 1 s
    assert labels() == "zero one two three four five six seven eight nine".split()
    header, rows = read_meta()
    assert header == ["filename", "fold", "target", "category", "speaker"]
    assert rows == expected_fsdd_meta(fsdd_names, "official")
    # Takes 0-4 of every speaker and digit are the official test set (fold 1).
    assert Counter(r[1] for r in rows) == {"1": 300, "2": 2700}
    assert Counter((r[1], r[4]) for r in rows if r[1] == "1") == {("1", s): 50 for s in SPEAKERS}
    for name in fsdd_names:
        info = sf.info(PREPARED / "audio" / name)
        assert (info.frames, info.samplerate, info.channels, info.subtype) == (SR, SR, 1, "PCM_16")
    info = dataset_json()
    assert info["split"] == "official" and info["folds"] == [1, 2]
    assert info["fold_names"] == {"1": "test (takes 0-4)", "2": "train (takes 5 and up)"}
    assert info["clip_checksums_checked"] is True
    assert "sha256 of every recording (fsdd.sha256)" in info["checks"]
    assert info["config"]["split"] == "official"

    # The shortest clip is zero-padded at the end, the longest cropped, both as client.audio does.
    short, long = min(frames, key=frames.get), max(frames, key=frames.get)
    for name in (short, long):
        written, _ = sf.read(PREPARED / "audio" / name, dtype="float32")
        expected = fix_length(load_audio(FSDD_DIR / "recordings" / name, SR), SR)
        np.testing.assert_allclose(written, expected, atol=1 / 32767)
    written, _ = sf.read(PREPARED / "audio" / short, dtype="float32")
    assert not written[frames[short] :].any() and written[: frames[short]].any()


@needs_fsdd
def test_real_fsdd_speaker_split(work: Path, fsdd_names: list[str]) -> None:
    # The recordings folder itself is a source too.
    summary = main(fsdd_params(FSDD_DIR / "recordings", "speaker", clip_seconds=0.5))
    assert summary["n_clips"] == 3000
    header, rows = read_meta()
    assert rows == expected_fsdd_meta(fsdd_names, "speaker")
    # Leave one speaker out: fold k is the k-th speaker in sorted order, 500 clips each.
    assert Counter(r[1] for r in rows) == {str(k): 500 for k in range(1, 7)}
    assert {(r[1], r[4]) for r in rows} == {(str(k), s) for k, s in enumerate(SPEAKERS, 1)}
    assert {sf.info(PREPARED / "audio" / r[0]).frames for r in rows} == {SR // 2}
    info = dataset_json()
    assert info["split"] == "speaker" and info["folds"] == [1, 2, 3, 4, 5, 6]
    assert info["fold_names"] == {str(k): s for k, s in enumerate(SPEAKERS, 1)}


@pytest.fixture(scope="module")
def fsdd_zip(tmp_path_factory: pytest.TempPathFactory, fsdd_names: list[str]) -> Path:
    """A zip of the repository layout (README + recordings), as GitHub's archive of v1.0.10."""
    folder = tmp_path_factory.mktemp("fsdd")
    files = {f"recordings/{n}": (FSDD_DIR / "recordings" / n).read_bytes() for n in fsdd_names}
    files["README.md"] = (FSDD_DIR / "README.md").read_bytes()
    name = "free-spoken-digit-dataset-1.0.10"
    return write_zip(folder / "v1.0.10.zip", files, name, stored=True)


@needs_fsdd
@pytest.mark.parametrize("via", ["zip", "url"])
def test_fsdd_repository_zip(
    work: Path, fsdd_zip: Path, fsdd_names: list[str], monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    with serve(fsdd_zip.parent, monkeypatch) as (base, requests):
        source = f"{base}/{fsdd_zip.name}" if via == "url" else str(fsdd_zip)
        assert main(fsdd_params(source, "official", clip_seconds=0.25))["n_clips"] == 3000
    assert read_meta()[1] == expected_fsdd_meta(fsdd_names, "official")
    assert {sf.info(PREPARED / "audio" / n).frames for n in fsdd_names[::100]} == {SR // 4}
    info = dataset_json()
    assert info["layout"] == "FSDD recordings"
    assert info["checks"][:2] == [
        "zip CRC of every member",
        "sha256 of every recording (fsdd.sha256)",
    ]
    if via == "url":
        assert requests == [f"/{fsdd_zip.name}"]
        assert (work / "data" / "downloads" / "v1.0.10.zip").read_bytes() == fsdd_zip.read_bytes()


def test_packaged_fsdd_checksums(fsdd_names: list[str]) -> None:
    sums = read_checksums(FSDD_CHECKSUMS, "sha256")
    assert sorted(sums) == fsdd_names and len(set(sums.values())) == 3000
    assert FSDD_CHECKSUMS.read_bytes() == (FSDD_DIR / "audio.sha256").read_bytes()


@pytest.fixture()
def fsdd_copy(work: Path, fsdd_names: list[str]) -> Path:
    """A writable copy of the shared FSDD folder (recordings only)."""
    shutil.copytree(FSDD_DIR / "recordings", work / "fsdd" / "recordings")
    return work / "fsdd"


def _tamper(recordings: Path) -> None:
    wave, rate = sf.read(recordings / TAMPERED, dtype="int16")
    sf.write(recordings / TAMPERED, wave // 2, rate, subtype="PCM_16")  # still a valid WAV


FSDD_BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "tampered recording": (
        _tamper,
        rf"1 file\(s\) fail the sha256 check: .*fsdd/recordings/{TAMPERED} "
        r"\(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\); the data is corrupt or modified; "
        r"replace .*fsdd",
    ),
    "missing recording": (
        lambda d: (d / TAMPERED).unlink(),
        r"2999 clips, expected 3000, category 'seven' has 299 clips, expected 300, "
        r"speaker 'jackson' has 499 clips, expected 500",
    ),
    "unknown recording": (
        lambda d: shutil.copy(d / TAMPERED, d / "7_jackson_50.wav"),
        r"3001 clips, expected 3000, .*speaker 'jackson' has 501 clips",
    ),
    "bad file name": (
        lambda d: (d / "seven.wav").write_bytes(b""),
        r"not FSDD recordings \(names are <digit>_<speaker>_<take>\.wav\): .*recordings/seven\.wav",
    ),
}


@needs_fsdd
@pytest.mark.parametrize("case", list(FSDD_BROKEN))
def test_broken_fsdd(work: Path, fsdd_copy: Path, case: str) -> None:
    change, message = FSDD_BROKEN[case]
    change(fsdd_copy / "recordings")
    with pytest.raises(DatasetError, match=message):
        main(fsdd_params(fsdd_copy, "official"))
    assert_nothing_written()


@needs_fsdd
def test_fsdd_added_recording_has_no_checksum(work: Path, fsdd_copy: Path) -> None:
    """A 3001st take with a checksum-free twin removed: counts pass, the sha256 file refuses it."""
    recordings = fsdd_copy / "recordings"
    (recordings / TAMPERED).rename(recordings / "7_jackson_50.wav")
    with pytest.raises(
        DatasetError, match=r"1 file\(s\) have no FSDD v1\.0\.10 checksum: .*7_jackson_50"
    ):
        main(fsdd_params(fsdd_copy, "official"))
    assert_nothing_written()


# --- data.split ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "split", "message"),
    [
        (
            "esc10",
            "speaker",
            r"data\.split 'speaker' is not available for esc10 \(it has no speakers\); "
            r"its splits: official",
        ),
        ("urbansound8k", "speaker", r"not available for urbansound8k"),
        ("fsdd", "random", r"data\.split must be one of \['official', 'speaker'\], got 'random'"),
    ],
)
def test_split_errors(work: Path, dataset: str, split: str, message: str) -> None:
    data = {"dataset": dataset, "source": "x.zip", "split": split, "sample_rate": SR}
    with pytest.raises(ValueError, match=message):
        main({"data": {**data, "clip_seconds": 1.0}})
    with pytest.raises(ValueError, match=r"params: data: missing key\(s\) split"):
        main({"data": {k: v for k, v in {**data, "clip_seconds": 1}.items() if k != "split"}})
    assert_nothing_written()


def test_every_dataset_has_the_official_split() -> None:
    assert sorted(DATASETS) == ["esc10", "esc50", "fsdd", "urbansound8k"]
    assert {name: a.splits for name, a in DATASETS.items()} == {
        "esc10": ("official",),
        "esc50": ("official",),
        "fsdd": ("official", "speaker"),
        "urbansound8k": ("official",),
    }


# --- UrbanSound8K mini archives with the real layout ----------------------------------------

# (sample rate, channels, subtype) cycled over the clips: the real mix of formats.
US8K_FORMATS = [
    (44100, 1, "PCM_16"),
    (48000, 1, "PCM_16"),
    (16000, 2, "PCM_24"),
    (22050, 1, "FLOAT"),
    (11025, 1, "PCM_U8"),
    (96000, 2, "PCM_16"),
]
US8K_CSV = "metadata/UrbanSound8K.csv"
STEREO_24 = "audio/fold1/1012-2-0-0.wav"  # the third clip: 16 kHz, stereo, 24-bit


def _clip_bytes(index: int) -> bytes:
    rate, channels, subtype = US8K_FORMATS[index % len(US8K_FORMATS)]
    n = rate // 100 + index % 3 * rate // 400  # 10, 12.5 or 15 ms
    wave = np.random.default_rng(index).uniform(-0.5, 0.5, (n, channels)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def _csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


@pytest.fixture(scope="module")
def us8k_files() -> dict[str, bytes]:
    """{path under UrbanSound8K/: bytes}: one clip per fold and class (100), CSV, credits."""
    rows, files = [list(COLUMNS)], {}
    for fold in range(1, 11):
        for class_id, name in enumerate(CLASSES):
            fs_id = 1000 + 10 * fold + class_id
            clip = f"{fs_id}-{class_id}-0-0.wav"
            files[f"audio/fold{fold}/{clip}"] = _clip_bytes(len(rows) - 1)
            salience = str(1 + len(rows) % 2)
            start, end = "0.5", "0.515"
            rows.append([clip, str(fs_id), start, end, salience, str(fold), str(class_id), name])
    files[US8K_CSV] = _csv_bytes(rows)
    files["FREESOUNDCREDITS.txt"] = b"credits\n"
    return files


def write_tar(path: Path, files: dict[str, bytes], top: str = "UrbanSound8K") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def us8k(md5: str | None = None) -> Dataset:
    """The UrbanSound8K adapter for the mini archive: 100 clips, the archive's md5 (if any)."""
    return dataclasses.replace(DATASETS["urbansound8k"], expected_clips=100, archive_md5=md5)


def us8k_config(source: str | Path) -> DataConfig:
    return DataConfig("urbansound8k", str(source), "official", SR, 0.01)


def expected_us8k_meta(files: dict[str, bytes]) -> list[list[str]]:
    _, *rows = csv.reader(io.StringIO(files[US8K_CSV].decode()))
    out = [[r[0], r[5], r[6], r[7], r[1], r[4]] for r in rows]
    return sorted(out, key=lambda r: (int(r[1]), r[0]))


def check_us8k_output(work: Path, files: dict[str, bytes]) -> None:
    assert labels() == list(CLASSES)
    header, rows = read_meta()
    assert header == ["filename", "fold", "target", "category", "fsID", "salience"]
    assert rows == expected_us8k_meta(files)
    assert Counter(r[1] for r in rows) == {str(f): 10 for f in range(1, 11)}
    for name, *_ in rows:
        info = sf.info(PREPARED / "audio" / name)
        assert (info.frames, info.samplerate, info.channels, info.subtype) == (80, SR, 1, "PCM_16")
    # The stereo 24-bit 16 kHz clip: downmixed and resampled as client.audio does.
    source = work / "stereo24.wav"
    source.write_bytes(files[STEREO_24])
    assert (sf.info(source).channels, sf.info(source).subtype) == (2, "PCM_24")
    written, _ = sf.read(PREPARED / "audio" / Path(STEREO_24).name, dtype="float32")
    np.testing.assert_allclose(written, fix_length(load_audio(source, SR), 80), atol=1 / 32767)


def test_us8k_url_tar_gz(
    work: Path, us8k_files: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "zenodo"
    folder.mkdir()
    archive = write_tar(folder / "UrbanSound8K.tar.gz", us8k_files)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    with serve(folder, monkeypatch) as (base, requests):
        url = f"{base}/UrbanSound8K.tar.gz?download=1"
        summary = prepare(us8k_config(url), adapter=us8k(md5))
        prepare(us8k_config(url), adapter=us8k(md5))  # reuses the download, checked again
    assert requests == ["/UrbanSound8K.tar.gz?download=1"]
    # 10, 12.5 or 15 ms at 8 kHz: 80 samples (kept), 100 or 120 (cropped); 8-bit 11025 Hz too.
    lengths = [
        ceil(sf.info(io.BytesIO(data)).frames * SR / sf.info(io.BytesIO(data)).samplerate)
        for name, data in us8k_files.items()
        if name.endswith(".wav")
    ]
    assert summary == {
        "dataset": "urbansound8k",
        "n_clips": 100,
        "n_classes": 10,
        "cropped": sum(k > 80 for k in lengths),
        "padded": sum(k < 80 for k in lengths),
    }
    check_us8k_output(work, us8k_files)
    info = dataset_json()
    assert info["layout"] == "UrbanSound8K" and info["folds"] == list(range(1, 11))
    assert info["archive_md5_checked"] is True and info["clip_checksums_checked"] is False
    assert info["checks"][0] == f"archive md5 {md5}"
    assert info["official_url"] == "https://zenodo.org/records/1203745/files/UrbanSound8K.tar.gz"
    assert list((work / "data" / "downloads").iterdir()) == [
        work / "data" / "downloads" / "UrbanSound8K.tar.gz"
    ]


@pytest.mark.parametrize("level", ["parent", "dataset folder"])
def test_us8k_directory(work: Path, us8k_files: dict[str, bytes], level: str) -> None:
    for name, data in us8k_files.items():
        (work / "src" / "UrbanSound8K" / name).parent.mkdir(parents=True, exist_ok=True)
        (work / "src" / "UrbanSound8K" / name).write_bytes(data)
    source = work / "src" if level == "parent" else work / "src" / "UrbanSound8K"
    assert prepare(us8k_config(source), adapter=us8k())["n_clips"] == 100
    check_us8k_output(work, us8k_files)
    assert dataset_json()["archive_md5_checked"] is False


def test_us8k_local_zip(work: Path, us8k_files: dict[str, bytes]) -> None:
    archive = write_zip(work / "us8k.zip", us8k_files, "UrbanSound8K")
    assert prepare(us8k_config(archive), adapter=us8k())["n_clips"] == 100
    check_us8k_output(work, us8k_files)


def test_us8k_real_size_is_required(work: Path, us8k_files: dict[str, bytes]) -> None:
    """``main`` (the real adapter) refuses the mini archive: 8732 clips are expected."""
    archive = write_tar(work / "UrbanSound8K.tgz", us8k_files)
    with pytest.raises(DatasetError, match=r"UrbanSound8K\.csv: 100 clips, expected 8732; "):
        main({"data": dataclasses.asdict(us8k_config(archive))})
    assert_nothing_written()


def _edit_us8k_csv(edit: Callable[[list[list[str]]], list[list[str]]]) -> Callable[[dict], None]:
    def apply(files: dict[str, bytes]) -> None:
        rows = list(csv.reader(io.StringIO(files[US8K_CSV].decode())))
        files[US8K_CSV] = _csv_bytes(edit(rows))

    return apply


def _set_fold(value: str) -> Callable[[dict], None]:
    def edit(rows: list[list[str]]) -> list[list[str]]:
        rows[5][5] = value  # line 6 of the CSV
        return rows

    return _edit_us8k_csv(edit)


US8K_BROKEN = {
    "missing clip": (
        lambda f: f.pop(STEREO_24),
        rf"1 clip\(s\) listed in {US8K_CSV} are missing: .*UrbanSound8K\.tar\.gz:UrbanSound8K/"
        rf"{STEREO_24}; replace",
    ),
    "corrupt clip": (
        lambda f: f.update({STEREO_24: b"RIFF\x00garbage" * 20}),
        rf"1 clip\(s\) do not decode: .*UrbanSound8K\.tar\.gz:UrbanSound8K/{STEREO_24} \(",
    ),
    "csv missing column": (
        _edit_us8k_csv(lambda rows: [r[:4] + r[5:] for r in rows]),
        r"UrbanSound8K\.csv: missing column\(s\) salience \(header .*\); expected the "
        r"UrbanSound8K header with slice_file_name, fsID, start, end, salience, fold, classID, class",
    ),
    "fold over the range": (
        _set_fold("11"),
        r"UrbanSound8K\.csv, line 6: malformed row \(fold '11' out of range 1-10\)",
    ),
    "fold under the range": (
        _set_fold("0"),
        r"UrbanSound8K\.csv, line 6: malformed row \(fold '0' out of range 1-10\)",
    ),
    "class name off its classID": (
        _edit_us8k_csv(lambda rows: [*rows[:3], [*rows[3][:7], "siren"], *rows[4:]]),
        r"line 4: malformed row \(class 'siren' for classID 2, expected 'children_playing'\)",
    ),
    "clip in the wrong fold folder": (
        lambda f: f.update({"audio/fold2/1012-2-0-0.wav": f.pop(STEREO_24)}),
        r"1 clip\(s\) listed in metadata/UrbanSound8K\.csv are missing: .*fold1/1012-2-0-0\.wav",
    ),
    "no metadata": (
        lambda f: f.pop(US8K_CSV),
        r"no urbansound8k dataset found \(expected \[<top>/\]metadata/UrbanSound8K\.csv",
    ),
}


@pytest.mark.parametrize("case", list(US8K_BROKEN))
def test_broken_us8k_archive(work: Path, us8k_files: dict[str, bytes], case: str) -> None:
    change, message = US8K_BROKEN[case]
    files = dict(us8k_files)
    change(files)
    archive = write_tar(work / "UrbanSound8K.tar.gz", files)
    with pytest.raises(DatasetError, match=message):
        prepare(us8k_config(archive), adapter=us8k())
    assert_nothing_written()


def test_us8k_download_md5_mismatch(
    work: Path, us8k_files: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real archive md5 (the default) refuses the mini archive; nothing is kept."""
    write_tar(tmp_path / "UrbanSound8K.tar.gz", us8k_files)
    with serve(tmp_path, monkeypatch) as (base, _):
        url = f"{base}/UrbanSound8K.tar.gz"
        with pytest.raises(
            DatasetError,
            match=rf"download of {url} has md5 [0-9a-f]{{32}}, expected {ARCHIVE_MD5} "
            r"\(archive md5 mismatch\)",
        ):
            prepare(us8k_config(url), adapter=us8k(ARCHIVE_MD5))
    assert_nothing_written()
    assert list((work / "data" / "downloads").iterdir()) == []  # no .part, no bad archive


def test_us8k_reused_download_md5_mismatch(work: Path, us8k_files: dict[str, bytes]) -> None:
    downloads = work / "data" / "downloads"
    downloads.mkdir(parents=True)
    write_tar(downloads / "UrbanSound8K.tar.gz", us8k_files)
    with pytest.raises(
        DatasetError, match=r"UrbanSound8K\.tar\.gz \(downloaded from .*\) has md5 "
    ):
        prepare(us8k_config("http://127.0.0.1:9/UrbanSound8K.tar.gz"), adapter=us8k(ARCHIVE_MD5))
    assert_nothing_written()


def test_truncated_tar_gz(work: Path, us8k_files: dict[str, bytes]) -> None:
    archive = write_tar(work / "UrbanSound8K.tar.gz", us8k_files)
    cut = work / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DatasetError, match=r"cut\.tar\.gz: not a readable tar archive .*; replace"):
        prepare(us8k_config(cut), adapter=us8k())
    assert_nothing_written()
    assert not (work / "data" / "prepared.tmp").exists()  # the partial extraction is gone too


def test_unsafe_tar_members_are_ignored(work: Path, us8k_files: dict[str, bytes]) -> None:
    archive = write_tar(work / "UrbanSound8K.tar.gz", {**us8k_files, "../../escape.txt": b"x"})
    assert prepare(us8k_config(archive), adapter=us8k())["n_clips"] == 100
    assert not (work / "escape.txt").exists() and not (work / "data" / "escape.txt").exists()
