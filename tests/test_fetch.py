"""Tests of the fetch stage (pipelines/fetch.py) on ESC-50/ESC-10, and of pipelines/params.py.

Real data: the ESC-10 release and the canonical ESC-50 esc50.csv from the shared data folder
(``ESC_SHARED_DATA``, default ``../shared/data`` next to the repository). ESC-50 archives are
built here with the real layout and CSV but tiny WAVs, and served over loopback HTTP for the
URL path. Nothing leaves the machine. The helpers above the tests are shared with
test_datasets.py (the other datasets).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import http.server
import io
import json
import os
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from math import ceil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from client.audio import fix_length, load_audio
from pipelines.datasets import DATASETS
from pipelines.datasets.base import read_checksums
from pipelines.datasets.esc import ESC10_CATEGORIES, ESC50_CHECKSUMS
from pipelines.datasets.sources import download_name
from pipelines.fetch import DataConfig, DatasetError, main, prepare
from pipelines.params import from_dict, load_params

DATA = Path(
    os.environ.get("ESC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
ESC10_DIR = DATA / "esc10"
ESC50_CSV = DATA / "esc50-meta" / "esc50.csv"
pytestmark = pytest.mark.skipif(
    not (ESC10_DIR / "audio").is_dir() or not ESC50_CSV.is_file(),
    reason=f"shared data not found under {DATA} (set ESC_SHARED_DATA)",
)
PREPARED = Path("data/prepared")
DOG = "1-100032-A-0.wav"  # an esc10=True clip of ESC-50, in the first fold
SR = 8000


def esc50_rows() -> list[dict[str, str]]:
    with ESC50_CSV.open(newline="") as f:
        return list(csv.DictReader(f))


def expected_meta(dataset: str) -> list[list[str]]:
    """meta.csv rows the stage must write, from the canonical esc50.csv."""
    rows = [r for r in esc50_rows() if dataset == "esc50" or r["esc10"] == "True"]
    labels = sorted({r["category"]: int(r["target"]) for r in rows}.items(), key=lambda kv: kv[1])
    target = {name: str(i) for i, (name, _) in enumerate(labels)}
    out = [[r["filename"], r["fold"], target[r["category"]], r["category"]] for r in rows]
    return sorted(out, key=lambda r: (int(r[1]), r[0]))


def read_meta() -> tuple[list[str], list[list[str]]]:
    with (PREPARED / "meta.csv").open(newline="") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def labels() -> list[str]:
    return (PREPARED / "labels.txt").read_text().splitlines()


def assert_nothing_written() -> None:
    assert not PREPARED.exists()
    assert not PREPARED.with_name("prepared.tmp").exists()


def wav_bytes(samples: int, seed: int, fmt: str = "WAV") -> bytes:
    """Noise at 16 kHz: halving the rate keeps resampling cheap (44.1 kHz is the real test's)."""
    wave = np.random.default_rng(seed).uniform(-0.5, 0.5, samples).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, wave, 16000, format=fmt, subtype="PCM_16" if fmt == "WAV" else "VORBIS")
    return buffer.getvalue()


def write_zip(path: Path, files: dict[str, bytes], top: str, stored: bool = False) -> Path:
    compression = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in files.items():
            zf.writestr(f"{top}/{name}" if top else name, data)
    return path


def write_md5(path: Path, files: dict[str, bytes]) -> Path:
    lines = [f"{hashlib.md5(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())]
    path.write_text("".join(lines))
    return path


@dataclass
class Esc50:
    """An ESC-50 v2 lookalike: the real esc50.csv, 2000 tiny WAVs of 120, 160 or 200 samples."""

    files: dict[str, bytes]
    folder: Path  # holds the intact ESC-50-master.zip and its esc50.md5

    def archive(
        self, files: dict[str, bytes] | None = None, *, stored: bool = False
    ) -> tuple[Path, Path]:
        """(zip, md5 file of exactly the files in it): the intact one, or a new variant."""
        if files is None and not stored:
            return self.folder / "ESC-50-master.zip", self.folder / "esc50.md5"
        files = self.files if files is None else files
        variant = Path(tempfile.mkdtemp(dir=self.folder))
        zip_path = write_zip(variant / "ESC-50-master.zip", files, "ESC-50-master", stored)
        return zip_path, write_md5(variant / "esc50.md5", files)


@pytest.fixture(scope="module")
def esc50(tmp_path_factory: pytest.TempPathFactory) -> Esc50:
    files = {"meta/esc50.csv": ESC50_CSV.read_bytes(), "README.md": b"ESC-50 lookalike\n"}
    for i, row in enumerate(esc50_rows()):
        files[f"audio/{row['filename']}"] = wav_bytes(120 + 40 * (i % 3), i)
    folder = tmp_path_factory.mktemp("esc50")
    write_zip(folder / "ESC-50-master.zip", files, "ESC-50-master")
    write_md5(folder / "esc50.md5", files)
    return Esc50(files, folder)


@pytest.fixture()
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory standing in for the repository root."""
    workdir = tmp_path / "repo"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


def config(
    source: str | Path, dataset: str = "esc10", clip_seconds: float = 0.01, split: str = "official"
) -> DataConfig:
    return DataConfig(
        dataset=dataset, source=str(source), split=split, sample_rate=SR, clip_seconds=clip_seconds
    )


def prepare_with(cfg: DataConfig, md5: Path) -> dict:
    """``prepare`` with the ESC adapter checking against ``md5`` (a crafted archive's sums)."""
    return prepare(cfg, adapter=dataclasses.replace(DATASETS[cfg.dataset], checksums=md5))


@contextlib.contextmanager
def serve(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    """HTTP on 127.0.0.1 serving ``folder``; yields (base URL, request paths).

    ``/truncated.zip`` promises 1000 bytes and sends 10.
    """
    for name in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self) -> None:
            requests.append(self.path)
            if self.path == "/truncated.zip":  # promises 1000 bytes, sends 10
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"PK" * 5)
                return
            super().do_GET()

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    finally:
        httpd.shutdown()
        httpd.server_close()


# --- the real ESC-10 release --------------------------------------------------------------


def test_real_esc10_release_end_to_end(work: Path) -> None:
    summary = main(
        {
            "data": {
                "dataset": "esc10",
                "source": str(ESC10_DIR),
                "split": "official",
                "sample_rate": SR,
                "clip_seconds": 5,
            }
        }
    )
    n = 5 * SR
    sources = sorted((ESC10_DIR / "audio").glob("*/*.ogg"))
    # Lengths after resampling to SR, from the headers (resample_poly: ceil(frames * up / down)).
    frames = {p: sf.info(p).frames for p in sources}
    resampled = {p: ceil(k * SR / 44100) for p, k in frames.items()}
    odd = [p for p in sources if frames[p] != 220544]
    assert len(sources) == 400 and len(odd) == 20
    cropped, padded = sum(k > n for k in resampled.values()), sum(k < n for k in resampled.values())
    assert summary == {
        "dataset": "esc10",
        "n_clips": 400,
        "n_classes": 10,
        "cropped": cropped,
        "padded": padded,
    }
    assert padded > 0 and cropped > 380  # every 5.001 s clip loses 8 samples; long odd ones more

    assert labels() == list(ESC10_CATEGORIES)
    header, rows = read_meta()
    assert header == ["filename", "fold", "target", "category"]
    assert rows == expected_meta("esc10")  # the release folders agree with ESC-50's labels
    for name, *_ in rows:
        info = sf.info(PREPARED / "audio" / name)
        assert (info.frames, info.samplerate, info.channels, info.subtype) == (n, SR, 1, "PCM_16")
    info = json.loads((PREPARED / "dataset.json").read_text())
    assert info["layout"] == "ESC-10 release" and info["folds"] == [1, 2, 3, 4, 5]
    assert info["config"] == {
        "dataset": "esc10",
        "source": str(ESC10_DIR),
        "split": "official",
        "sample_rate": SR,
        "clip_seconds": 5.0,
    }

    # The shortest clip is zero-padded at the end, the longest cropped: both equal client.audio's.
    short = ESC10_DIR / "audio" / "010 - Fire crackling" / "4-164661-B.ogg"
    long = ESC10_DIR / "audio" / "010 - Fire crackling" / "1-17808-B.ogg"
    assert resampled[short] < n < resampled[long]
    for src, out in ((short, "4-164661-B-12.wav"), (long, "1-17808-B-12.wav")):
        written, _ = sf.read(PREPARED / "audio" / out, dtype="float32")
        np.testing.assert_allclose(written, fix_length(load_audio(src, SR), n), atol=1 / 32767)
    written, _ = sf.read(PREPARED / "audio" / "4-164661-B-12.wav")
    assert not written[resampled[short] :].any() and written[resampled[short] - 1] != 0


# --- ESC-50 archives with the real layout --------------------------------------------------


def test_esc50_zip(work: Path, esc50: Esc50) -> None:
    archive, md5 = esc50.archive()
    summary = prepare_with(config(archive, "esc50"), md5)
    # 120 / 160 / 200 samples at 16 kHz -> 60 / 80 / 100 at 8 kHz; 0.01 s = 80 samples.
    assert summary == {
        "dataset": "esc50",
        "n_clips": 2000,
        "n_classes": 50,
        "cropped": 666,
        "padded": 667,
    }
    assert read_meta() == (["filename", "fold", "target", "category"], expected_meta("esc50"))
    by_target = sorted(
        {r["category"]: int(r["target"]) for r in esc50_rows()}.items(), key=lambda kv: kv[1]
    )
    assert labels() == [name for name, _ in by_target]
    assert {sf.info(PREPARED / "audio" / name).frames for name, *_ in read_meta()[1]} == {80}
    written, _ = sf.read(PREPARED / "audio" / DOG, dtype="float32")
    source = work / "dog.wav"
    source.write_bytes(esc50.files[f"audio/{DOG}"])
    np.testing.assert_allclose(written, fix_length(load_audio(source, SR), 80), atol=1 / 32767)


def test_esc10_from_esc50_zip_matches_release(work: Path, esc50: Esc50) -> None:
    archive, md5 = esc50.archive()
    summary = prepare_with(config(archive), md5)
    assert summary["n_clips"] == 400 and summary["n_classes"] == 10
    assert labels() == list(ESC10_CATEGORIES)
    assert read_meta()[1] == expected_meta("esc10")  # same as from the ESC-10 release
    assert sorted(p.name for p in (PREPARED / "audio").iterdir()) == sorted(
        r[0] for r in expected_meta("esc10")
    )


@pytest.mark.parametrize("level", ["parent", "repo folder"])
def test_esc50_directory(work: Path, esc50: Esc50, level: str) -> None:
    archive, md5 = esc50.archive()
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(work / "src")
    source = work / "src" if level == "parent" else work / "src" / "ESC-50-master"
    assert prepare_with(config(source), md5)["n_clips"] == 400
    assert read_meta()[1] == expected_meta("esc10")


def test_rerun_replaces_output_and_failure_keeps_it(work: Path, esc50: Esc50) -> None:
    archive, md5 = esc50.archive()
    prepare_with(config(archive, clip_seconds=0.02), md5)
    prepare_with(config(archive), md5)
    assert json.loads((PREPARED / "dataset.json").read_text())["n_samples"] == 80
    files = dict(esc50.files)
    del files[f"audio/{DOG}"]
    bad, md5 = esc50.archive(files)
    with pytest.raises(DatasetError, match="missing"):
        prepare_with(config(bad), md5)
    assert json.loads((PREPARED / "dataset.json").read_text())["n_samples"] == 80
    assert len(list((PREPARED / "audio").iterdir())) == 400


def test_packaged_checksums_cover_the_real_csv() -> None:
    sums = read_checksums(ESC50_CHECKSUMS)
    assert sums.pop("meta/esc50.csv") == hashlib.md5(ESC50_CSV.read_bytes()).hexdigest()
    assert sorted(sums) == sorted(f"audio/{row['filename']}" for row in esc50_rows())
    assert len(set(sums.values())) == 2000


# --- download over loopback HTTP -----------------------------------------------------------


@pytest.fixture()
def server(esc50: Esc50, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    """HTTP on 127.0.0.1 serving the ESC-50 lookalike zip; yields (base URL, request paths)."""
    with serve(esc50.folder, monkeypatch) as served:
        yield served


def test_url_download_and_reuse(work: Path, esc50: Esc50, server: tuple[str, list[str]]) -> None:
    base, requests = server
    url = f"{base}/ESC-50-master.zip"
    assert download_name(url) == "ESC-50-master.zip"
    md5 = esc50.folder / "esc50.md5"
    assert prepare_with(config(url), md5)["n_clips"] == 400
    download = work / "data" / "downloads" / "ESC-50-master.zip"
    assert download.read_bytes() == (esc50.folder / "ESC-50-master.zip").read_bytes()
    assert sorted(p.name for p in download.parent.iterdir()) == ["ESC-50-master.zip"]
    prepare_with(config(url), md5)  # reuses the download
    assert requests == ["/ESC-50-master.zip"]
    assert read_meta()[1] == expected_meta("esc10")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/absent.zip", r"could not download .*/absent\.zip .*404"),
        ("/truncated.zip", r"ended after 10 of 1000 bytes"),
    ],
)
def test_url_failures(
    work: Path, esc50: Esc50, server: tuple[str, list[str]], path: str, message: str
) -> None:
    with pytest.raises(DatasetError, match=message):
        prepare_with(config(server[0] + path), esc50.folder / "esc50.md5")
    assert_nothing_written()
    assert list((work / "data" / "downloads").iterdir()) == []  # no .part, no partial file


# --- broken ESC-50 archives ----------------------------------------------------------------


def _csv_edit(
    edit: Callable[[list[list[str]]], list[list[str]]],
) -> Callable[[dict[str, bytes]], None]:
    def apply(files: dict[str, bytes]) -> None:
        rows = list(csv.reader(io.StringIO(files["meta/esc50.csv"].decode())))
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(edit(rows))
        files["meta/esc50.csv"] = out.getvalue().encode()

    return apply


def _relabel_first_dog(rows: list[list[str]]) -> list[list[str]]:
    first = next(r for r in rows if r[3] == "dog")
    first[2:4] = ["1", "rooster"]
    return rows


BROKEN = {
    "missing clip": (
        lambda f: f.pop(f"audio/{DOG}"),
        True,
        rf"clip\(s\) listed in meta/esc50\.csv are missing: .*{DOG}",
    ),
    "corrupt clip": (
        lambda f: f.update({f"audio/{DOG}": b"\x00garbage" * 50}),
        True,
        rf"1 clip\(s\) do not decode: .*ESC-50-master/audio/{DOG} \(",
    ),
    "tampered clip": (
        lambda f: f.update({f"audio/{DOG}": wav_bytes(160, 99)}),
        False,
        rf"1 file\(s\) fail the md5 check: .*{DOG} \(md5 ",
    ),
    "tampered csv": (
        _csv_edit(lambda rows: rows[:-1]),
        False,
        r"fail the md5 check: .*meta/esc50\.csv",
    ),
    "csv missing column": (
        _csv_edit(lambda rows: [r[:3] + r[4:] for r in rows]),
        True,
        r"esc50\.csv: missing column\(s\) category",
    ),
    "csv wrong count per class": (
        _csv_edit(_relabel_first_dog),
        True,
        r"category 'dog' has 39 clips, expected 40, category 'rooster' has 41",
    ),
    "csv row dropped": (
        _csv_edit(lambda rows: [r for r in rows if r[0] != DOG]),
        True,
        r"399 clips, expected 400, category 'dog' has 39 clips",
    ),
    "unlisted clip": (lambda f: None, "drop dog", rf"have no ESC-50 v2 checksum: .*{DOG}"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_esc50_archive(work: Path, esc50: Esc50, case: str) -> None:
    change, md5_of_changed, message = BROKEN[case]
    files = dict(esc50.files)
    change(files)
    archive, md5 = esc50.archive(files)
    if md5_of_changed is False:  # checksums of the original files
        write_md5(md5, esc50.files)
    elif md5_of_changed == "drop dog":
        write_md5(md5, {k: v for k, v in files.items() if k != f"audio/{DOG}"})
    with pytest.raises(DatasetError, match=message) as err:
        prepare_with(config(archive), md5)
    assert str(archive) in str(err.value)
    assert_nothing_written()


def test_truncated_zip(work: Path, esc50: Esc50) -> None:
    archive, md5 = esc50.archive()
    truncated = work / "cut.zip"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(
        DatasetError, match=r"cut\.zip: not a readable zip archive .*; replace .*cut\.zip"
    ):
        prepare_with(config(truncated), md5)
    assert_nothing_written()


def test_corrupt_zip_member_fails_crc(work: Path, esc50: Esc50) -> None:
    archive, md5 = esc50.archive(stored=True)
    data = bytearray(archive.read_bytes())
    at = data.index(esc50.files[f"audio/{DOG}"]) + 200  # inside the clip's stored bytes
    data[at] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=rf"ESC-50-master/audio/{DOG} fails its CRC check"):
        prepare_with(config(archive), md5)
    assert_nothing_written()


def test_wrong_sources(work: Path, esc50: Esc50) -> None:
    with pytest.raises(
        DatasetError, match=r"no such file or directory; set it to an http\(s\) URL"
    ):
        prepare(config(work / "nowhere.zip"))
    with pytest.raises(
        DatasetError, match=r"no esc50 dataset found \(expected \[<top>/\]meta/esc50\.csv"
    ):
        prepare(config(ESC10_DIR, "esc50"))
    _, md5 = esc50.archive()
    twice = write_zip(
        work / "twice.zip", {f"{top}/{k}": v for k, v in esc50.files.items() for top in "ab"}, ""
    )
    with pytest.raises(DatasetError, match=r"meta/esc50\.csv found in several folders \(a/, b/\)"):
        prepare_with(config(twice), md5)
    assert_nothing_written()


# --- the ESC-10 release layout, as a zip (tiny OGGs with the real file names) --------------


@pytest.fixture(scope="module")
def esc10_files() -> dict[str, bytes]:
    """{'<NNN - Class name>/<name>.ogg': tiny OGG} for the real release names."""
    variants = [wav_bytes(n, n, fmt="OGG") for n in (120, 160, 200)]
    names = sorted(
        p.relative_to(ESC10_DIR / "audio").as_posix() for p in (ESC10_DIR / "audio").glob("*/*.ogg")
    )
    return {name: variants[i % 3] for i, name in enumerate(names)}


def test_esc10_release_zip(work: Path, esc10_files: dict[str, bytes]) -> None:
    archive = write_zip(
        work / "ESC-10-master.zip", {**esc10_files, "README.md": b"ESC-10\n"}, "ESC-10-master"
    )
    assert prepare(config(archive))["n_clips"] == 400
    assert labels() == list(ESC10_CATEGORIES)
    assert read_meta()[1] == expected_meta("esc10")
    assert json.loads((PREPARED / "dataset.json").read_text())["clip_checksums_checked"] is False


ESC10_BROKEN = {
    "missing clip": (
        lambda f: f.pop("001 - Dog bark/1-100032-A.ogg"),
        r"esc10\.zip:ESC-10-master/: 399 clips, expected 400, category 'dog' has 39 clips",
    ),
    "unknown class folder": (
        lambda f: f.update({"011 - Cat meow/1-1-A.ogg": b""}),
        r"not ESC-10 release files .*011 - Cat meow/1-1-A\.ogg",
    ),
    "bad file name": (
        lambda f: f.update({"001 - Dog bark/dog.ogg": b""}),
        r"names <fold>-<id>-<take>\.ogg\): .*001 - Dog bark/dog\.ogg",
    ),
    "corrupt clip": (
        lambda f: f.update({"001 - Dog bark/1-100032-A.ogg": b"OggS garbage"}),
        r"1 clip\(s\) do not decode: .*esc10\.zip:ESC-10-master/001 - Dog bark/1-100032-A\.ogg \(",
    ),
}


@pytest.mark.parametrize("case", list(ESC10_BROKEN))
def test_broken_esc10_release(work: Path, esc10_files: dict[str, bytes], case: str) -> None:
    change, message = ESC10_BROKEN[case]
    files = dict(esc10_files)
    change(files)
    with pytest.raises(DatasetError, match=message):
        prepare(config(write_zip(work / "esc10.zip", files, "ESC-10-master")))
    assert_nothing_written()


# --- config ---------------------------------------------------------------------------------


def test_data_config_is_strict(work: Path) -> None:
    good = {
        "dataset": "esc10",
        "source": "x.zip",
        "split": "official",
        "sample_rate": 16000,
        "clip_seconds": 5,
    }
    assert from_dict(DataConfig, good) == DataConfig("esc10", "x.zip", "official", 16000, 5.0)
    with pytest.raises(
        ValueError,
        match=r"params: data: unknown key\(s\) rate; valid keys: dataset, source, split, sample_r",
    ):
        main({"data": {**good, "rate": 1}})
    with pytest.raises(ValueError, match=r"DataConfig: missing key\(s\) source"):
        from_dict(DataConfig, {k: v for k, v in good.items() if k != "source"})
    with pytest.raises(ValueError, match=r"params has no 'data' section"):
        main({"train": {}})
    for key, value, message in [
        (
            "dataset",
            "esc100",
            r"data\.dataset must be one of \['esc10', 'esc50', 'fsdd', 'urbansound8k'\], "
            r"got 'esc100'",
        ),
        ("sample_rate", 0, r"data\.sample_rate must be a positive integer, got 0"),
        ("sample_rate", 16000.0, r"got 16000\.0"),
        (
            "clip_seconds",
            0.00001,
            r"data\.clip_seconds must be positive \(one sample at least\), got 1e-05",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            from_dict(DataConfig, {**good, key: value})
    assert (
        from_dict(DataConfig, {**good, "clip_seconds": 0.0001}).n_samples == 2
    )  # one over the limit


def test_from_dict_tuples_and_load_params(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Cfg:
        sizes: tuple[int, ...] = (1,)
        maybe: tuple[str, ...] | None = None
        items: list[int] | None = None

    assert from_dict(Cfg, {"sizes": [2, 3], "maybe": ["a"], "items": [4]}) == Cfg(
        (2, 3), ("a",), [4]
    )
    with pytest.raises(ValueError, match=r"Cfg: expected a mapping of keys, got list"):
        from_dict(Cfg, [1])
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"data": {"dataset": "esc10"}}))
    assert load_params(path) == {"data": {"dataset": "esc10"}}
    path.write_text("- 1\n")
    with pytest.raises(ValueError, match=r"params\.yaml: expected a mapping of sections, got list"):
        load_params(path)
