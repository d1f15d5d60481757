"""How loud each clip of a dataset is at its very start: recordings begun mid-sound.

A spoken word rises from silence to its vowel, so its first frame sits well below its loudest (in
FSDD the median clip starts 20 dB below). A clip whose first frame is within ``CUT_DB`` of its
loudest begins mid-word, its onset cut off by the recording: ``1_george_37`` begins in the vowel of
"one", which the rows then hear as "five", "three" or "two". ``python -m pipelines.results``
scores the rows of a dataset on such clips apart when ``docs/ablation/<dataset>.clip-starts.csv``
(written by this module) is there:

    python -m pipelines.clip_starts ../shared/data/fsdd/recordings docs/ablation/fsdd.clip-starts.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

CUT_DB = -3.0  # a first frame at least this loud, relative to the loudest: the onset is cut off
FRAME_SECONDS = 0.02
AUDIO = (".wav", ".flac", ".ogg")


def start_level_db(x: np.ndarray, sample_rate: int, frame_seconds: float = FRAME_SECONDS) -> float:
    """Power of the first frame relative to the loudest frame, in dB (<= 0).

    x: (samples,) or (samples, channels) audio; frames of ``frame_seconds`` at half-frame hops.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x.mean(axis=1) if x.ndim == 2 else x
    size = max(1, round(frame_seconds * sample_rate))
    if len(x) < size:
        raise ValueError(f"a clip of {len(x)} samples is shorter than one {frame_seconds * 1000:.0f} ms frame")
    frames = np.lib.stride_tricks.sliding_window_view(x, size)[:: max(1, size // 2)]  # (n_frames, size)
    power = (frames**2).mean(axis=1)
    if power.max() <= 0:
        raise ValueError("a silent clip (all samples zero) has no loudest frame")
    return float(10 * np.log10(max(power[0], 1e-20) / power.max()))


def clip_starts(directory: Path) -> pd.DataFrame:
    """One row per audio file under ``directory``: ``file`` (its name) and ``start_db``, by name."""
    paths = sorted((p for p in directory.rglob("*") if p.suffix.lower() in AUDIO), key=lambda p: (p.name, p))
    if not paths:
        raise FileNotFoundError(f"no audio files ({', '.join(AUDIO)}) under {directory}: pass the clips' folder")
    rows = []
    for path in paths:
        x, sr = sf.read(path, always_2d=False)
        rows.append((path.name, round(start_level_db(x, sr), 2)))
    return pd.DataFrame(rows, columns=["file", "start_db"])


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", type=Path, help="folder of the dataset's audio files")
    parser.add_argument("out", type=Path, help="CSV to write, e.g. docs/ablation/fsdd.clip-starts.csv")
    args = parser.parse_args(argv)
    table = clip_starts(args.clips)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(f"{args.out}: {len(table)} clips, {int((table['start_db'] >= CUT_DB).sum())} start within "
          f"{-CUT_DB:g} dB of their loudest frame")
    return args.out


if __name__ == "__main__":
    main()
