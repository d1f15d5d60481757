"""The older serving architecture, kept as a baseline: FastAPI + uvicorn + eager PyTorch.

One process loads ``models/model.pt`` (``training.checkpoint.load_checkpoint``: LogMel + network)
and answers each request on its own, with no batching: ``POST /predict`` takes the raw float32
little-endian samples of one mono clip at the model's rate as the body and returns
``{"probabilities": [...]}``; ``GET /health`` answers once the model is loaded. Used only by
``benchmarks.serving``; not a supported way to serve the model.

    ESC_CHECKPOINT=models/model.pt uvicorn --factory benchmarks.fastapi_server:create_app --port 8080
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from fastapi import FastAPI, HTTPException, Request

from training.checkpoint import load_checkpoint

CHECKPOINT_ENV = "ESC_CHECKPOINT"


def create_app(checkpoint: Path | None = None) -> FastAPI:
    """Load the checkpoint named by ``checkpoint`` or ``$ESC_CHECKPOINT`` and build the app."""
    path = Path(checkpoint or os.environ.get(CHECKPOINT_ENV, "models/model.pt"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run `dvc repro train` or set {CHECKPOINT_ENV}")
    trained = load_checkpoint(path)
    app = FastAPI(title="esc (FastAPI + eager PyTorch baseline)")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ready", "labels": trained.labels}

    @app.post("/predict")
    async def predict(request: Request) -> dict:
        body = await request.body()
        if not body or len(body) % 4:
            raise HTTPException(400, f"body must be float32 samples, got {len(body)} bytes")
        waveform = torch.from_numpy(np.frombuffer(body, dtype="<f4").copy())[None]  # (1, samples)
        return {"probabilities": trained.predict_proba(waveform)[0].tolist()}

    return app
