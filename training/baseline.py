"""The classical baseline: a random forest on MFCC statistics (scikit-learn).

MFCCs are the orthonormal DCT-II of the log-mel (dB) over mel bands, so the baseline reads the
same precomputed features as the networks. Per clip: mean and standard deviation over time of
``n_mfcc`` coefficients and of their first differences, shape (4 * n_mfcc,).
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dct
from sklearn.ensemble import RandomForestClassifier


def mfcc_statistics(logmel: np.ndarray, n_mfcc: int = 20) -> np.ndarray:
    """(clips, n_mels, frames) log-mel dB -> (clips, 4 * n_mfcc) summary features."""
    if logmel.ndim != 3 or logmel.shape[1] < n_mfcc:
        raise ValueError(f"need (clips, n_mels >= {n_mfcc}, frames) log-mel, got {logmel.shape}")
    mfcc = dct(logmel, type=2, axis=1, norm="ortho")[:, :n_mfcc]  # (clips, n_mfcc, frames)
    delta = np.diff(mfcc, axis=2) if mfcc.shape[2] > 1 else np.zeros_like(mfcc)
    return np.concatenate(
        [mfcc.mean(2), mfcc.std(2), delta.mean(2), delta.std(2)], axis=1
    ).astype(np.float32)


def random_forest(n_estimators: int, seed: int) -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=-1)
