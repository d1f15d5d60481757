"""Paths shared by the pipeline stages, relative to the repository root (the working
directory DVC runs stages in). Only constants: nothing is read or created here.
"""

from pathlib import Path

PARAMS = Path("params.yaml")
DOWNLOADS = Path("data/downloads")
PREPARED = Path("data/prepared")
FEATURES = Path("data/features")
MODELS = Path("models")
METRICS = Path("metrics")
ARTIFACTS = Path("artifacts")
MODEL_REPOSITORY = ARTIFACTS / "model_repository"
