"""DVC stage `features`: log-mel of every prepared clip into one array plus an index.

Reads ``data.sample_rate`` and ``features`` from params.yaml and ``data/prepared`` from `fetch`.
Writes ``data/features/``: ``logmel.npy`` (clips, n_mels, frames) float32, ``index.csv``
(filename, fold, target, category; row i is clip i), ``labels.txt``, ``dataset.json`` (from
`fetch`) and ``config.json`` (the resolved front-end config, read back by training and export).
"""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from pipelines import paths
from pipelines.params import from_dict, load_params
from training.features import LogMel, LogMelConfig

log = logging.getLogger(__name__)


def load_feature_config(features_dir=paths.FEATURES) -> LogMelConfig:
    return from_dict(LogMelConfig, json.loads((features_dir / "config.json").read_text()))


def main(params: dict, batch_size: int = 32) -> dict:
    cfg = from_dict(LogMelConfig, {**params["features"], "sample_rate": params["data"]["sample_rate"]})
    meta = pd.read_csv(paths.PREPARED / "meta.csv")
    front_end = LogMel(cfg).eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(meta), batch_size):
            names = meta["filename"].iloc[start : start + batch_size]
            waves = []
            for name in names:
                wave, rate = sf.read(paths.PREPARED / "audio" / name, dtype="float32")
                if rate != cfg.sample_rate:
                    raise ValueError(
                        f"{name}: prepared at {rate} Hz but features expect {cfg.sample_rate} Hz; "
                        "run `dvc repro fetch` with the same data.sample_rate"
                    )
                waves.append(wave)
            chunks.append(front_end(torch.from_numpy(np.stack(waves))).numpy())  # (b, n_mels, frames)
    logmel = np.concatenate(chunks)
    out = paths.FEATURES
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    np.save(out / "logmel.npy", logmel)
    meta[["filename", "fold", "target", "category"]].to_csv(out / "index.csv", index=False)
    shutil.copy(paths.PREPARED / "labels.txt", out / "labels.txt")
    shutil.copy(paths.PREPARED / "dataset.json", out / "dataset.json")
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    summary = {"clips": int(logmel.shape[0]), "shape": list(logmel.shape[1:])}
    log.info("features: %s -> %s", summary, out)
    return summary


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main(load_params())
