"""esc-classify: arguments, directory expansion, plot names, the JSON schema, exit codes, plots.

Fast tests need no server; slow ones run the CLI against the real server of the ``triton``
fixture.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from matplotlib.image import imread

from client import cli
from client.timeline import Event, Timeline, Window
from tests.conftest import ESC10

CLIP = ESC10 / "audio" / "001 - Dog bark" / "5-203128-A.ogg"
RAIN = ESC10 / "audio" / "002 - Rain" / "1-17367-A.ogg"
KEYS = ["schema", "file", "error", "top_k", "timeline", "plot"]
TIMELINE_KEYS = ["duration", "window", "hop", "threshold", "windows", "events"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--top-k", "0"], "--top-k must be >= 1"),
        (["--concurrency", "0"], "--concurrency must be >= 1"),
        (["--hop", "0"], "--hop must be > 0"),
        (["--threshold", "1.01"], r"--threshold must be within \[0, 1\]"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--plot", "out.jpg"], "--plot must name a .png file"),
        (["--retries", "-1"], "--retries must be >= 0"),
    ],
)
def test_bad_arguments_are_refused(args: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(["clip.wav", *args])
    assert exit_info.value.code == 2 and re.search(message, capsys.readouterr().err)


def test_directories_are_searched_recursively_for_audio_only(tmp_path) -> None:
    for name in ["b/2.WAV", "b/a/1.flac", "a.ogg", "c/notes.txt", "c/d/x.mp3", "e.json"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "dir.wav").mkdir()  # a directory named like audio is searched, not listed
    files, empty = cli.expand([str(tmp_path / "e.json"), str(tmp_path), str(tmp_path / "empty")])
    rel = [str(Path(f).relative_to(tmp_path)) for f in files]
    assert rel == ["e.json", "a.ogg", "b/2.WAV", "b/a/1.flac", "c/d/x.mp3"]
    assert empty == [str(tmp_path / "empty")]


def test_plot_names_one_file_or_one_per_stem(tmp_path) -> None:
    out = tmp_path / "plots" / "out.png"
    assert cli.plot_paths(out, ["x/a.wav"]) == [out]
    names = [p.name for p in cli.plot_paths(out, ["x/a.wav", "y/a.ogg", "b.flac", "z/a.wav"])]
    assert names == ["out-a.png", "out-a-2.png", "out-b.png", "out-a-3.png"]


def test_json_records_follow_the_documented_schema() -> None:
    ok = cli.record("a.wav", [("dog", 0.91234567)], plot=Path("p.png"))
    assert list(ok) == KEYS and ok["schema"] == 1 and ok["timeline"] is None
    assert ok["top_k"] == [{"label": "dog", "probability": 0.912346}] and ok["plot"] == "p.png"
    failed = cli.record("b.wav", error="b.wav: no such file")
    assert failed == {"schema": 1, "file": "b.wav", "error": "b.wav: no such file", "top_k": [],
                      "timeline": None, "plot": None}
    w = Window(0.0, 5.0, [("dog", 0.8)], np.array([0.8, 0.2]))
    last = Window(5.0, 7.25, [("dog", 0.6)], np.array([0.6, 0.4]))
    tl = Timeline("c.wav", 7.25, 5.0, 5.0, 0.5, ["dog", "rain"], [w, last], [Event("dog", 0.0, 7.25, 0.7, 2)])
    rec = json.loads(json.dumps(cli.record("c.wav", tl.top(1), tl)))
    assert list(rec["timeline"]) == TIMELINE_KEYS and rec["top_k"] == [{"label": "dog", "probability": 0.7}]
    assert rec["timeline"]["windows"][1] == {"start": 5.0, "end": 7.25, "top_k": [{"label": "dog", "probability": 0.6}]}
    assert rec["timeline"]["events"] == [{"label": "dog", "start": 0.0, "end": 7.25, "confidence": 0.7, "windows": 2}]
    for key in KEYS:  # the docstring documents every key
        assert f'"{key}"' in cli.__doc__
    for key in TIMELINE_KEYS + ["start", "end", "confidence", "windows", "label", "probability"]:
        assert f'"{key}"' in cli.__doc__


def test_a_directory_without_audio_fails_before_connecting(tmp_path, capsys) -> None:
    assert cli.main([str(tmp_path), "--url", "127.0.0.1:1", "--json"]) == 1
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert error == f"{tmp_path}: no audio files (.wav .flac .ogg .oga .mp3 .aif .aiff) in it or below"


def test_an_unreachable_server_exits_2(capsys) -> None:
    assert cli.main([str(CLIP), "--url", "127.0.0.1:1", "--retries", "0"]) == 2
    assert "cannot reach Triton at 127.0.0.1:1" in capsys.readouterr().err


# -- real server -----------------------------------------------------------------------------

def _png(path: Path) -> tuple[int, int]:
    image = imread(path)
    assert image.std() > 0, f"{path} is blank"
    return image.shape[:2]


@pytest.mark.slow
def test_a_directory_in_json_with_one_plot_per_file(triton, tmp_path, capsys) -> None:
    audio = tmp_path / "audio"
    (audio / "sub").mkdir(parents=True)
    shutil.copy(CLIP, audio / "sub" / "dog.ogg")
    shutil.copy(RAIN, audio / "rain.ogg")
    (audio / "readme.txt").write_text("skipped")
    (audio / "broken.wav").write_text("not audio")
    out = tmp_path / "plots" / "out.png"
    out.parent.mkdir()
    code = cli.main([str(audio), "--url", triton.http_url, "--protocol", "http", "--json",
                     "--concurrency", "3", "--top-k", "3", "--plot", str(out)])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1  # broken.wav
    assert [Path(r["file"]).name for r in records] == ["broken.wav", "rain.ogg", "dog.ogg"]
    assert all(list(r) == KEYS for r in records)
    assert "not a readable audio file" in records[0]["error"] and records[0]["plot"] is None
    for r, stem in zip(records[1:], ["rain", "dog"]):
        assert r["error"] is None and len(r["top_k"]) == 3 and r["plot"] == str(out.with_name(f"out-{stem}.png"))
        assert _png(Path(r["plot"])) == (800, 1000)
    assert sorted(p.name for p in out.parent.iterdir()) == ["out-dog.png", "out-rain.png"]


@pytest.mark.slow
def test_timeline_json_and_text_and_plot(triton, tmp_path, capsys) -> None:
    """17.5 s of dog, rain, dog (with a partial last window) over gRPC with shared memory."""
    dog, rate = sf.read(CLIP, dtype="float32")
    rain, _ = sf.read(RAIN, dtype="float32")
    long = tmp_path / "long.flac"
    five = 5 * rate
    sf.write(long, np.concatenate([dog[:five], rain[:five], dog[: five // 2], dog[:five]]), rate)
    out = tmp_path / "timeline.png"
    args = [str(long), "--url", triton.grpc_url, "--timeline", "--hop", "2.5", "--batch-size", "4",
            "--threshold", "0.2", "--shared-memory"]
    assert cli.main([*args, "--json", "--plot", str(out)]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    tl = record["timeline"]
    assert record["error"] is None and list(tl) == TIMELINE_KEYS and tl["duration"] == 17.5
    assert [(w["start"], w["end"]) for w in tl["windows"]] == [
        (0.0, 5.0), (2.5, 7.5), (5.0, 10.0), (7.5, 12.5), (10.0, 15.0), (12.5, 17.5)]
    assert all(e["windows"] >= 1 and 0 <= e["start"] < e["end"] <= 17.5 for e in tl["events"])
    assert _png(out) == (1000, 1000) and record["plot"] == str(out)
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "(17.5 s: 6 windows of 5 s every 2.5 s)" in text and "events (top-1 >= 20%)" in text
    assert "overall:" in text and text.count(" s  ") >= 6
