"""Cross-validation reports computed from out-of-fold predictions and learning curves.

Covers metrics (per fold, their mean/std, pooled), the confusion table, per-class accuracy,
the misclassified clips, two PNG plots and ``write_cv_report``, which writes them all into one
folder. Every number comes from the inputs; nothing is typed by hand.

Inputs, as the train stage produces them: ``y_true`` (n,) int targets, ``probs`` (n, n_classes)
probabilities (each clip predicted by the fold model that did not train on it), ``folds`` (n,)
int, ``filenames`` (n,) str, ``labels`` (n_classes,) names, and learning curves with columns
``fold, epoch, train_loss, lr`` and, when validated, ``val_loss, val_accuracy``.

Not covered: training, MLflow logging and DVC wiring (``pipelines/train.py``).
matplotlib is imported inside the plotting functions and draws on an Agg canvas, so importing
this module neither loads it nor changes the global backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

DPI = 100
TOP_K = 3
# Metrics that are averaged across folds; ``n`` (a count) is reported per fold and pooled only.
RATE_METRICS = ("accuracy", "top3_accuracy", "precision_macro", "recall_macro", "f1_macro")
LEARNING_CURVES_SIZE = (12.0, 4.5)  # inches; the PNG is this times DPI pixels
REQUIRED_CURVE_COLUMNS = ("fold", "epoch", "train_loss")


# --- argument checks ---------------------------------------------------------------------------


def _check_predictions(y_true: np.ndarray, probs: np.ndarray, n_classes: int) -> None:
    """Raise ValueError unless y_true is (n,) ints in [0, n_classes) and probs (n, n_classes)."""
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    if y_true.ndim != 1 or probs.ndim != 2 or probs.shape != (len(y_true), n_classes):
        raise ValueError(
            f"need y_true of shape (n,) and probs of shape (n, n_classes={n_classes}); "
            f"got y_true {y_true.shape} and probs {probs.shape}"
        )
    if len(y_true) == 0:
        raise ValueError("no predictions: y_true and probs are empty")
    _check_targets(y_true, n_classes, "y_true")
    if not np.all(np.isfinite(probs)):
        raise ValueError("probs contains NaN or infinite values")


def _check_targets(y: np.ndarray, n_classes: int, name: str) -> None:
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"{name} holds class indices in [{y.min()}, {y.max()}], outside [0, {n_classes - 1}]"
        )


def _check_same_length(n: int, **arrays: np.ndarray) -> None:
    for name, array in arrays.items():
        if array.shape != (n,):
            raise ValueError(f"{name} has shape {array.shape}, need ({n},) like y_true")


def _check_clips(
    filenames: np.ndarray, folds: np.ndarray, y_true: np.ndarray, probs: np.ndarray,
    labels: Sequence[str],
) -> None:
    """The checks of ``_check_predictions`` plus (n,) filenames and folds, one label per column."""
    if probs.ndim == 2 and len(labels) != probs.shape[1]:
        raise ValueError(f"got {len(labels)} labels for probs of shape {probs.shape}")
    _check_predictions(y_true, probs, len(labels))
    _check_same_length(len(y_true), filenames=filenames, folds=folds)


def _check_curves(curves: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_CURVE_COLUMNS if c not in curves.columns]
    if missing:
        raise ValueError(f"learning curves lack columns {missing}; got {list(curves.columns)}")
    if curves.empty:
        raise ValueError("learning curves are empty")


# --- metrics -----------------------------------------------------------------------------------


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, n_classes: int) -> dict[str, float]:
    """Metrics of (n,) int targets against (n, n_classes) probabilities; top-1 is the argmax.

    Returns ``accuracy``, ``top3_accuracy`` (top-k with k = min(3, n_classes)), macro
    ``precision_macro``/``recall_macro``/``f1_macro`` over the classes that occur in the targets
    or the predictions (zero_division=0), and ``n``.
    """
    y_true, probs = np.asarray(y_true), np.asarray(probs, dtype=float)
    _check_predictions(y_true, probs, n_classes)
    y_pred = probs.argmax(axis=1)  # (n,)
    k = min(TOP_K, n_classes)
    if k == n_classes:  # every class is in the top k; sklearn warns and rejects 2 classes here
        top_k = 1.0
    else:
        top_k = top_k_accuracy_score(y_true, probs, k=k, labels=np.arange(n_classes))
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="macro", zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "top3_accuracy": float(top_k),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
        "n": float(len(y_true)),
    }


def cv_summary(y_true: np.ndarray, probs: np.ndarray, folds: np.ndarray, n_classes: int) -> dict:
    """Per-fold metrics of out-of-fold predictions, their mean and std, and the pooled metrics.

    ``y_true`` (n,), ``probs`` (n, n_classes), ``folds`` (n,). Returns
    ``{"folds": {"<fold>": metrics, ...}, "<metric>_mean": ..., "<metric>_std": ..., "pooled":
    metrics}``: mean and population std (ddof=0) over folds, each fold weighted equally, for every
    metric but the count ``n``.
    """
    y_true, probs, folds = np.asarray(y_true), np.asarray(probs, dtype=float), np.asarray(folds)
    _check_predictions(y_true, probs, n_classes)
    _check_same_length(len(y_true), folds=folds)
    per_fold = {
        str(int(fold)): classification_metrics(y_true[folds == fold], probs[folds == fold], n_classes)
        for fold in np.unique(folds)
    }
    summary: dict = {"folds": per_fold}
    for name in RATE_METRICS:
        values = np.array([m[name] for m in per_fold.values()])  # (n_folds,)
        summary[f"{name}_mean"] = float(values.mean())
        summary[f"{name}_std"] = float(values.std())
    summary["pooled"] = classification_metrics(y_true, probs, n_classes)
    return summary


# --- tables ------------------------------------------------------------------------------------


def confusion_table(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    """(n_classes, n_classes) counts: rows are true labels (index ``true``), columns predicted."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(labels) < 1:
        raise ValueError("labels is empty")
    _check_same_length(len(y_true), y_pred=y_pred)
    _check_targets(y_true, len(labels), "y_true")
    _check_targets(y_pred, len(labels), "y_pred")
    counts = confusion_matrix(y_true, y_pred, labels=np.arange(len(labels)))
    return pd.DataFrame(
        counts,
        index=pd.Index(list(labels), name="true"),
        columns=pd.Index(list(labels), name="predicted"),
    )


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    """One row per class: ``label, n, correct, accuracy, confused_with, confused_count``.

    ``confused_with`` is the wrong label this class is most often predicted as (the first such
    label on ties; empty with ``confused_count`` 0 when the class is never mistaken).
    ``accuracy`` is NaN for a class with no clips.
    """
    counts = confusion_table(y_true, y_pred, labels).to_numpy()  # (n_classes, n_classes)
    n = counts.sum(axis=1)
    correct = np.diag(counts)
    off_diagonal = counts - np.diag(correct)
    worst = off_diagonal.argmax(axis=1)  # (n_classes,)
    worst_count = off_diagonal[np.arange(len(labels)), worst]
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(n > 0, correct / n, np.nan)
    return pd.DataFrame({
        "label": list(labels),
        "n": n,
        "correct": correct,
        "accuracy": accuracy,
        "confused_with": [labels[j] if c > 0 else "" for j, c in zip(worst, worst_count)],
        "confused_count": worst_count,
    })


def _top_k(probs: np.ndarray, k: int) -> np.ndarray:
    """(n, n_classes) -> (n, k) class indices by falling probability; ties go to the lower index,
    so column 0 equals ``probs.argmax(1)``."""
    return np.argsort(-probs, axis=1, kind="stable")[:, :k]


def misclassified(
    filenames: Sequence[str],
    folds: np.ndarray,
    y_true: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    k: int = TOP_K,
) -> pd.DataFrame:
    """One row per clip whose top-1 prediction is wrong, the most confident mistakes first.

    Columns: ``file, fold, true, true_prob`` (probability given to the true class), then
    ``pred_1, prob_1, ..., pred_k, prob_k`` with k = min(k, n_classes). Ties in confidence keep
    the input order.
    """
    filenames, folds = np.asarray(filenames, dtype=str), np.asarray(folds)
    y_true, probs = np.asarray(y_true), np.asarray(probs, dtype=float)
    _check_clips(filenames, folds, y_true, probs, labels)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, len(labels))
    names = np.asarray(labels, dtype=object)
    top = _top_k(probs, k)  # (n, k)
    wrong = np.flatnonzero(top[:, 0] != y_true)
    top_probs = np.take_along_axis(probs, top, axis=1)  # (n, k)
    table = pd.DataFrame({
        "file": filenames[wrong],
        "fold": folds[wrong],
        "true": names[y_true[wrong]],
        "true_prob": probs[wrong, y_true[wrong]],
    })
    for j in range(k):
        table[f"pred_{j + 1}"] = names[top[wrong, j]]
        table[f"prob_{j + 1}"] = top_probs[wrong, j]
    return table.sort_values("prob_1", ascending=False, kind="stable").reset_index(drop=True)


def oof_predictions(
    filenames: Sequence[str],
    folds: np.ndarray,
    y_true: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
) -> pd.DataFrame:
    """One row per clip: ``file, fold, target, predicted`` (label names) and ``prob_<label>``."""
    filenames, folds = np.asarray(filenames, dtype=str), np.asarray(folds)
    y_true, probs = np.asarray(y_true), np.asarray(probs, dtype=float)
    _check_clips(filenames, folds, y_true, probs, labels)
    names = np.asarray(labels, dtype=object)
    table = pd.DataFrame({
        "file": filenames,
        "fold": folds,
        "target": names[y_true],
        "predicted": names[probs.argmax(axis=1)],
    })
    prob_columns = pd.DataFrame(probs, columns=[f"prob_{label}" for label in labels])
    return pd.concat([table, prob_columns], axis=1)


# --- plots -------------------------------------------------------------------------------------


def confusion_figsize(n_classes: int) -> tuple[float, float]:
    """Figure size in inches: 7 x 6 up to 12 classes, then growing by 0.3 inch per class."""
    side = max(6.0, 0.3 * n_classes + 2.4)
    return side + 1.0, side  # the extra inch holds the colour bar


def plot_confusion(table: pd.DataFrame, path: str | Path) -> Path:
    """Heat map of a ``confusion_table`` as a PNG of ``confusion_figsize(n) * DPI`` pixels.

    Colour is the fraction of the true class (row-normalised), so classes of different sizes
    compare; non-zero counts are written in the cells. Font sizes shrink with the class count.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(table)
    if table.shape != (n, n) or n == 0:
        raise ValueError(f"confusion table must be square and non-empty, got shape {table.shape}")
    counts = table.to_numpy()  # (n, n)
    rows = counts.sum(axis=1, keepdims=True)
    fraction = counts / np.maximum(rows, 1)  # (n, n)
    cell_font = float(np.clip(150 / n, 7, 12))  # a 50-class cell is ~21 pt wide
    tick_font = float(np.clip(160 / n, 7, 11))

    fig = Figure(figsize=confusion_figsize(n), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.04, label="fraction of true class")
    for i, j in zip(*np.nonzero(counts)):
        ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=cell_font,
                color="white" if fraction[i, j] > 0.5 else "black")
    ticks = np.arange(n)
    ax.set_xticks(ticks, [str(c) for c in table.columns], rotation=90, fontsize=tick_font)
    ax.set_yticks(ticks, [str(r) for r in table.index], fontsize=tick_font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Out-of-fold confusion ({int(counts.sum())} clips)")
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    return path


def plot_learning_curves(curves: pd.DataFrame, path: str | Path) -> Path:
    """Two panels as a PNG of ``LEARNING_CURVES_SIZE * DPI`` pixels: losses, validation accuracy.

    One thin line per fold and a thick one for the mean over folds at each epoch; training loss
    solid, validation loss dashed. Without validation columns the accuracy panel says so.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    _check_curves(curves)
    has = {c: c in curves.columns and curves[c].notna().any() for c in ("val_loss", "val_accuracy")}
    mean = curves.groupby("epoch").mean(numeric_only=True).reset_index()

    fig = Figure(figsize=LEARNING_CURVES_SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    loss_ax, acc_ax = fig.subplots(1, 2)
    for i, (fold, rows) in enumerate(curves.groupby("fold")):
        colour = f"C{i % 10}"  # one colour per fold
        loss_ax.plot(rows["epoch"], rows["train_loss"], color=colour, lw=0.8, alpha=0.6,
                     label=f"fold {fold}")
        if has["val_loss"]:
            loss_ax.plot(rows["epoch"], rows["val_loss"], color=colour, lw=0.8, alpha=0.6, ls="--")
        if has["val_accuracy"]:
            acc_ax.plot(rows["epoch"], rows["val_accuracy"], color=colour, lw=0.8, alpha=0.6,
                        label=f"fold {fold}")
    loss_ax.plot(mean["epoch"], mean["train_loss"], color="black", lw=2, label="mean train")
    if has["val_loss"]:
        loss_ax.plot(mean["epoch"], mean["val_loss"], color="black", lw=2, ls="--", label="mean val")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Loss (train solid, val dashed)")
    loss_ax.legend(fontsize=7)
    if has["val_accuracy"]:
        acc_ax.plot(mean["epoch"], mean["val_accuracy"], color="black", lw=2, label="mean")
        acc_ax.set_ylim(0, 1)
        acc_ax.legend(fontsize=7)
    else:
        acc_ax.text(0.5, 0.5, "no validation data", ha="center", va="center",
                    transform=acc_ax.transAxes)
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="Validation accuracy")
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    return path


# --- everything --------------------------------------------------------------------------------


def write_cv_report(
    out_dir: str | Path,
    y_true: np.ndarray,
    probs: np.ndarray,
    folds: np.ndarray,
    filenames: Sequence[str],
    labels: Sequence[str],
    curves: pd.DataFrame | None,
) -> dict:
    """Write the cross-validation report into ``out_dir`` (created) and return ``cv_summary``.

    Files: ``confusion_matrix.csv``, ``confusion_matrix.png``, ``per_class.csv``,
    ``misclassified.csv``, ``oof_predictions.csv`` and, unless ``curves`` is None (models
    fitted without epochs), ``learning_curves.png``.
    """
    y_true, probs = np.asarray(y_true), np.asarray(probs, dtype=float)
    folds, filenames = np.asarray(folds), np.asarray(filenames, dtype=str)
    _check_clips(filenames, folds, y_true, probs, labels)
    if curves is not None:
        _check_curves(curves)  # before any file is written
    summary = cv_summary(y_true, probs, folds, len(labels))
    y_pred = probs.argmax(axis=1)  # (n,)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = confusion_table(y_true, y_pred, labels)
    table.to_csv(out_dir / "confusion_matrix.csv")
    plot_confusion(table, out_dir / "confusion_matrix.png")
    per_class_accuracy(y_true, y_pred, labels).to_csv(out_dir / "per_class.csv", index=False)
    misclassified(filenames, folds, y_true, probs, labels).to_csv(
        out_dir / "misclassified.csv", index=False
    )
    if curves is not None:
        plot_learning_curves(curves, out_dir / "learning_curves.png")
    oof_predictions(filenames, folds, y_true, probs, labels).to_csv(
        out_dir / "oof_predictions.csv", index=False
    )
    return summary
