"""Rebuild the front end and classifier saved by the `train` stage (``models/model.pt``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from training.features import LogMel, LogMelConfig
from training.models import ModelConfig, build_model


@dataclass
class TrainedModel:
    front_end: LogMel
    model: nn.Module
    labels: list[str]
    mlflow_run_id: str | None = None

    @torch.no_grad()
    def predict_proba(self, waveform: torch.Tensor) -> torch.Tensor:
        """(batch, samples) waveform -> (batch, n_classes) probabilities, the served ensemble's math."""
        return torch.softmax(self.model(self.front_end(waveform)), dim=-1)


def load_checkpoint(path: str | Path) -> TrainedModel:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if "state_dict" not in ckpt:
        raise ValueError(
            f"{path} holds no trained network ({ckpt['model_config']['name']!r}, "
            f"fit_final={ckpt['train_config']['fit_final']}); to export, use model.name resnet, "
            "cnn or crnn with train.fit_final true"
        )
    feature_cfg = LogMelConfig(**ckpt["feature_config"])
    model_cfg = ModelConfig(**{**ckpt["model_config"], "widths": tuple(ckpt["model_config"]["widths"])})
    model = build_model(model_cfg, n_mels=feature_cfg.n_mels, n_classes=len(ckpt["labels"]))
    model.load_state_dict(ckpt["state_dict"])
    return TrainedModel(
        front_end=LogMel(feature_cfg).eval(),
        model=model.eval(),
        labels=list(ckpt["labels"]),
        mlflow_run_id=ckpt.get("mlflow_run_id"),
    )
