"""Clips that begin mid-sound: the start level of each clip, written for the results page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from pipelines import clip_starts

SR = 8000


def word(fade_in: float, seconds: float = 0.4) -> np.ndarray:
    """A 300 Hz tone at 0.5, rising linearly over its first ``fade_in`` seconds: (samples,) float32."""
    t = np.arange(round(seconds * SR)) / SR
    ramp = np.clip(t / fade_in, 0, 1) if fade_in > 0 else np.ones_like(t)
    return (0.5 * ramp * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def test_a_word_that_rises_starts_far_below_its_peak_and_a_cut_one_at_it() -> None:
    rising = clip_starts.start_level_db(word(fade_in=0.1), SR)
    cut = clip_starts.start_level_db(word(fade_in=0.0), SR)
    # The first 20 ms frame of a 100 ms linear rise holds (20 / 100)^2 / 3 of the full power: -18.8 dB.
    assert rising == pytest.approx(-18.75, abs=0.5)
    assert clip_starts.CUT_DB <= cut <= 0 and cut > -0.5
    stereo = np.stack([word(0.1), word(0.1)], axis=1)  # (samples, channels): the mono mix's level
    assert clip_starts.start_level_db(stereo, SR) == pytest.approx(rising)


@pytest.mark.parametrize(("x", "message"), [(np.zeros(800), "silent clip"), (np.ones(100), "shorter than one 20 ms")])
def test_clips_without_a_level_are_refused(x: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        clip_starts.start_level_db(x, SR)


def test_the_csv_lists_every_clip_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clips = tmp_path / "recordings"
    (clips / "more").mkdir(parents=True)
    sf.write(clips / "1_a_0.wav", word(0.1), SR)
    sf.write(clips / "more" / "0_a_0.wav", word(0.0), SR)
    (clips / "notes.txt").write_text("not audio")
    out = clip_starts.main([str(clips), str(tmp_path / "records" / "fsdd.clip-starts.csv")])
    table = pd.read_csv(out)
    assert table["file"].tolist() == ["0_a_0.wav", "1_a_0.wav"]
    assert table["start_db"].iloc[0] >= clip_starts.CUT_DB > table["start_db"].iloc[1]
    assert "2 clips, 1 start within 3 dB of their loudest frame" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="no audio files"):
        clip_starts.clip_starts(tmp_path / "records")
