"""Cross-validation reports: metrics on cases worked out by hand, tables, plots, files, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from training.reports import (
    DPI,
    LEARNING_CURVES_SIZE,
    RATE_METRICS,
    classification_metrics,
    confusion_figsize,
    confusion_table,
    cv_summary,
    misclassified,
    oof_predictions,
    per_class_accuracy,
    plot_confusion,
    plot_learning_curves,
    write_cv_report,
)

ROOT = Path(__file__).resolve().parents[1]


def one_hot_probs(pred: list[int], n_classes: int, confidence: float = 0.9) -> np.ndarray:
    """(n,) predicted classes -> (n, n_classes) probabilities with ``confidence`` on them."""
    probs = np.full((len(pred), n_classes), (1 - confidence) / (n_classes - 1))
    probs[np.arange(len(pred)), pred] = confidence
    return probs


def random_cv(n_classes: int, per_class: int = 8, n_folds: int = 4, seed: int = 0) -> dict:
    """Out-of-fold predictions with every class in every fold, about 60 % right."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)  # (n,)
    probs = rng.dirichlet(np.ones(n_classes), len(y))  # (n, n_classes)
    probs[np.arange(len(y)), y] += rng.uniform(0, 1, len(y))
    probs /= probs.sum(axis=1, keepdims=True)
    return {
        "y_true": y,
        "probs": probs,
        "folds": np.tile(np.arange(1, n_folds + 1), len(y) // n_folds + 1)[: len(y)],
        "filenames": [f"clip-{i}.wav" for i in range(len(y))],
        "labels": [f"class {c}" for c in range(n_classes)],
    }


def curves_frame(folds: tuple[int, ...] = (1, 2, 3), epochs: int = 5, val: bool = True) -> pd.DataFrame:
    rows = []
    for fold in folds:
        for epoch in range(1, epochs + 1):
            row = {"fold": fold, "epoch": epoch, "train_loss": 2.0 / epoch + 0.1 * fold, "lr": 1e-3}
            if val:
                row |= {"val_loss": 2.5 / epoch + 0.1 * fold, "val_accuracy": 0.1 * epoch + 0.02 * fold}
            rows.append(row)
    return pd.DataFrame(rows)


def read_png(path: Path) -> np.ndarray:
    assert path.is_file(), path
    return matplotlib.image.imread(path)  # (height, width, channels)


def assert_png(path: Path, size_inches: tuple[float, float]) -> None:
    image = read_png(path)
    width, height = (round(s * DPI) for s in size_inches)
    assert image.shape[:2] == (height, width)
    assert image[..., :3].std() > 0, "blank image"


# --- metrics -----------------------------------------------------------------------------------


def test_perfect_predictor() -> None:
    y = np.array([0, 1, 2, 3, 3, 2, 1, 0, 4])
    metrics = classification_metrics(y, one_hot_probs(y.tolist(), 5), 5)
    assert metrics == {"accuracy": 1.0, "top3_accuracy": 1.0, "precision_macro": 1.0,
                       "recall_macro": 1.0, "f1_macro": 1.0, "n": 9.0}
    table = confusion_table(y, y, list("abcde"))
    np.testing.assert_array_equal(table.to_numpy(), np.diag(np.bincount(y)))


def test_two_classes_four_samples_by_hand() -> None:
    # y = 0 0 1 1, predicted 0 1 1 1.
    # class 0: precision 1/1, recall 1/2, F1 2/3;  class 1: precision 2/3, recall 2/2, F1 4/5.
    metrics = classification_metrics(np.array([0, 0, 1, 1]), one_hot_probs([0, 1, 1, 1], 2), 2)
    assert metrics["accuracy"] == pytest.approx(3 / 4)
    assert metrics["precision_macro"] == pytest.approx((1 + 2 / 3) / 2)
    assert metrics["recall_macro"] == pytest.approx((1 / 2 + 1) / 2)
    assert metrics["f1_macro"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert metrics["top3_accuracy"] == 1.0  # k = min(3, 2) = 2 covers both classes
    assert metrics["n"] == 4


def test_never_predicted_class_counts_as_zero() -> None:
    # y = 0 1, predicted 0 0: class 1 has precision 0/0 -> 0 and recall 0;
    # class 0 has precision 1/2, recall 1, F1 2/3.
    metrics = classification_metrics(np.array([0, 1]), one_hot_probs([0, 0], 3), 3)
    assert metrics["precision_macro"] == pytest.approx(1 / 4)
    assert metrics["recall_macro"] == pytest.approx(1 / 2)
    assert metrics["f1_macro"] == pytest.approx(1 / 3)


def test_top1_wrong_but_top3_right() -> None:
    probs = np.array([
        [0.30, 0.40, 0.20, 0.10],  # true 0 is second: top-1 wrong, top-3 right
        [0.40, 0.30, 0.20, 0.10],  # true 3 is last: both wrong
        [0.10, 0.20, 0.30, 0.40],  # true 3 is first: both right
        [0.10, 0.20, 0.40, 0.30],  # true 1 is third: top-1 wrong, top-3 right
    ])
    metrics = classification_metrics(np.array([0, 3, 3, 1]), probs, 4)
    assert metrics["accuracy"] == pytest.approx(1 / 4)
    assert metrics["top3_accuracy"] == pytest.approx(3 / 4)


def test_macro_scores_ignore_classes_absent_from_a_fold() -> None:
    y = np.array([0, 0, 2, 2])  # class 1 neither occurs nor is predicted
    metrics = classification_metrics(y, one_hot_probs(y.tolist(), 3), 3)
    assert metrics["f1_macro"] == 1.0


def test_cv_summary_by_hand() -> None:
    # fold 1: 2 of 2 right; fold 2: 1 of 4 right -> mean (1 + 1/4) / 2, std 3/8; pooled 3/6.
    y = np.array([0, 1, 0, 1, 0, 1])
    pred = [0, 1, 0, 0, 1, 0]
    folds = np.array([1, 1, 2, 2, 2, 2])
    summary = cv_summary(y, one_hot_probs(pred, 2), folds, 2)
    assert list(summary["folds"]) == ["1", "2"]
    assert summary["accuracy_mean"] == pytest.approx(5 / 8)
    assert summary["accuracy_std"] == pytest.approx(3 / 8)
    assert summary["pooled"]["accuracy"] == pytest.approx(1 / 2)
    assert summary["folds"]["2"]["n"] == 4


def test_cv_summary_mean_and_std_over_folds() -> None:
    data = random_cv(n_classes=6, n_folds=5)
    summary = cv_summary(data["y_true"], data["probs"], data["folds"], 6)
    assert sorted(summary["folds"], key=int) == ["1", "2", "3", "4", "5"]
    for name in RATE_METRICS:
        values = np.array([fold[name] for fold in summary["folds"].values()])
        assert summary[f"{name}_mean"] == pytest.approx(np.mean(values))
        assert summary[f"{name}_std"] == pytest.approx(np.std(values))
    assert summary["pooled"] == classification_metrics(data["y_true"], data["probs"], 6)
    assert sum(fold["n"] for fold in summary["folds"].values()) == len(data["y_true"])


# --- tables ------------------------------------------------------------------------------------


def test_confusion_table_sums_and_orientation() -> None:
    data = random_cv(n_classes=5)
    y, pred = data["y_true"], data["probs"].argmax(axis=1)
    table = confusion_table(y, pred, data["labels"])
    assert list(table.index) == list(table.columns) == data["labels"]
    assert table.to_numpy().sum() == len(y)
    np.testing.assert_array_equal(table.sum(axis=1), np.bincount(y, minlength=5))
    np.testing.assert_array_equal(table.sum(axis=0), np.bincount(pred, minlength=5))
    # one true-"a" clip predicted "b": row a, column b
    assert confusion_table(np.array([0]), np.array([1]), ["a", "b"]).loc["a", "b"] == 1


def test_per_class_accuracy_by_hand() -> None:
    y = np.array([0, 0, 0, 1, 2])
    pred = np.array([0, 1, 1, 1, 0])
    table = per_class_accuracy(y, pred, ["a", "b", "c", "d"]).set_index("label")
    assert table["n"].tolist() == [3, 1, 1, 0]
    assert table["correct"].tolist() == [1, 1, 0, 0]
    assert table.loc["a", "accuracy"] == pytest.approx(1 / 3)
    assert np.isnan(table.loc["d", "accuracy"])
    assert table["confused_with"].tolist() == ["b", "", "a", ""]
    assert table["confused_count"].tolist() == [2, 0, 1, 0]


def test_misclassified_rows_are_the_wrong_ones_most_confident_first() -> None:
    data = random_cv(n_classes=5)
    y, probs = data["y_true"], data["probs"]
    table = misclassified(data["filenames"], data["folds"], y, probs, data["labels"])
    wrong = np.flatnonzero(probs.argmax(axis=1) != y)
    assert 0 < len(wrong) < len(y)
    assert sorted(table["file"]) == sorted(np.array(data["filenames"])[wrong])
    assert table["prob_1"].is_monotonic_decreasing
    assert (table["pred_1"] != table["true"]).all()
    assert (table["prob_1"] >= table["prob_2"]).all() and (table["prob_2"] >= table["prob_3"]).all()
    row = table.iloc[0]
    i = data["filenames"].index(row["file"])
    assert row["fold"] == data["folds"][i]
    assert row["true"] == data["labels"][y[i]]
    assert row["true_prob"] == pytest.approx(probs[i, y[i]])
    assert row["pred_1"] == data["labels"][probs[i].argmax()]
    assert row["prob_1"] == pytest.approx(probs[i].max())


def test_misclassified_by_hand() -> None:
    probs = np.array([
        [0.6, 0.3, 0.1],  # true 0: right, left out
        [0.7, 0.2, 0.1],  # true 1: wrong at 0.7
        [0.1, 0.1, 0.8],  # true 0: wrong at 0.8, listed first
    ])
    table = misclassified(["x", "y", "z"], np.array([1, 2, 3]), np.array([0, 1, 0]), probs,
                          ["a", "b", "c"], k=2)
    assert table["file"].tolist() == ["z", "y"]
    assert table.columns.tolist() == ["file", "fold", "true", "true_prob",
                                      "pred_1", "prob_1", "pred_2", "prob_2"]
    assert table.iloc[1][["pred_1", "pred_2"]].tolist() == ["a", "b"]
    # k beyond the class count is capped; k below one is an error
    assert "pred_3" in misclassified(["x"], np.array([1]), np.array([1]), probs[:1], list("abc"), k=9)
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        misclassified(["x"], np.array([1]), np.array([1]), probs[:1], list("abc"), k=0)


def test_oof_predictions_round_trip() -> None:
    data = random_cv(n_classes=4)
    table = oof_predictions(data["filenames"], data["folds"], data["y_true"], data["probs"], data["labels"])
    assert table.columns[:4].tolist() == ["file", "fold", "target", "predicted"]
    np.testing.assert_allclose(table[[f"prob_{label}" for label in data["labels"]]], data["probs"])
    index = {label: i for i, label in enumerate(data["labels"])}
    np.testing.assert_array_equal(table["target"].map(index), data["y_true"])
    np.testing.assert_array_equal(table["predicted"].map(index), data["probs"].argmax(axis=1))


# --- plots and files ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 10, 50])
def test_plot_confusion(tmp_path: Path, n_classes: int) -> None:
    data = random_cv(n_classes=n_classes, per_class=4)
    table = confusion_table(data["y_true"], data["probs"].argmax(axis=1), data["labels"])
    path = plot_confusion(table, tmp_path / "confusion.png")
    assert_png(path, confusion_figsize(n_classes))


def test_confusion_figure_grows_with_classes() -> None:
    assert confusion_figsize(10) == (7.0, 6.0)
    width_50, height_50 = confusion_figsize(50)
    assert width_50 > 2 * 7.0 and height_50 > 2 * 6.0


@pytest.mark.parametrize("val", [True, False])
def test_plot_learning_curves(tmp_path: Path, val: bool) -> None:
    path = plot_learning_curves(curves_frame(val=val), tmp_path / "curves.png")
    assert_png(path, LEARNING_CURVES_SIZE)
    assert LEARNING_CURVES_SIZE == (12.0, 4.5)


def test_learning_curves_need_columns(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"lack columns \['train_loss'\]"):
        plot_learning_curves(curves_frame().drop(columns="train_loss"), tmp_path / "c.png")
    with pytest.raises(ValueError, match="learning curves are empty"):
        plot_learning_curves(curves_frame().iloc[:0], tmp_path / "c.png")


def test_write_cv_report(tmp_path: Path) -> None:
    data = random_cv(n_classes=10, n_folds=5)
    out = tmp_path / "nested" / "cv"
    summary = write_cv_report(out, curves=curves_frame(folds=(1, 2, 3, 4, 5)), **data)
    assert sorted(p.name for p in out.iterdir()) == sorted([
        "confusion_matrix.csv", "confusion_matrix.png", "per_class.csv", "misclassified.csv",
        "learning_curves.png", "oof_predictions.csv",
    ])
    assert summary == cv_summary(data["y_true"], data["probs"], data["folds"], 10)
    oof = pd.read_csv(out / "oof_predictions.csv")
    assert (oof["target"] == oof["predicted"]).mean() == pytest.approx(summary["pooled"]["accuracy"])
    confusion = pd.read_csv(out / "confusion_matrix.csv", index_col=0)
    assert confusion.to_numpy().sum() == len(data["y_true"])
    assert len(pd.read_csv(out / "misclassified.csv")) == (oof["target"] != oof["predicted"]).sum()
    assert pd.read_csv(out / "per_class.csv")["n"].sum() == len(data["y_true"])
    assert_png(out / "confusion_matrix.png", confusion_figsize(10))
    assert_png(out / "learning_curves.png", LEARNING_CURVES_SIZE)


def test_bad_curves_write_nothing(tmp_path: Path) -> None:
    data = random_cv(n_classes=3)
    with pytest.raises(ValueError, match="lack columns"):
        write_cv_report(tmp_path / "cv", curves=pd.DataFrame({"epoch": [1]}), **data)
    assert not (tmp_path / "cv").exists()


def test_import_loads_no_matplotlib_and_plots_leave_pyplot_alone(tmp_path: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "import training.reports as r\n"
        "assert 'matplotlib' not in sys.modules, 'imported at module load'\n"
        f"r.plot_confusion(r.confusion_table(np.array([0, 1]), np.array([0, 0]), ['a', 'b']), "
        f"{str(tmp_path / 'c.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# --- argument checks: one over and one under each limit ----------------------------------------


@pytest.mark.parametrize("columns", [2, 4])
def test_probs_with_wrong_class_count(columns: int) -> None:
    with pytest.raises(ValueError, match=rf"got y_true \(5,\) and probs \(5, {columns}\)"):
        classification_metrics(np.zeros(5, dtype=int), np.full((5, columns), 0.25), 3)


@pytest.mark.parametrize("n", [4, 6])
def test_targets_and_probs_of_different_length(n: int) -> None:
    with pytest.raises(ValueError, match=rf"y_true \({n},\) and probs \(5, 3\)"):
        cv_summary(np.zeros(n, dtype=int), np.full((5, 3), 1 / 3), np.ones(n, dtype=int), 3)


@pytest.mark.parametrize("n", [4, 6])
def test_folds_of_wrong_length(n: int) -> None:
    with pytest.raises(ValueError, match=rf"folds has shape \({n},\), need \(5,\)"):
        cv_summary(np.zeros(5, dtype=int), np.full((5, 3), 1 / 3), np.ones(n, dtype=int), 3)


@pytest.mark.parametrize("n", [2, 4])
def test_filenames_and_predictions_of_wrong_length(n: int) -> None:
    data = random_cv(n_classes=3, per_class=1, n_folds=1)
    with pytest.raises(ValueError, match=rf"filenames has shape \({n},\), need \(3,\)"):
        misclassified([f"{i}.wav" for i in range(n)], data["folds"], data["y_true"],
                      data["probs"], data["labels"])
    with pytest.raises(ValueError, match=rf"y_pred has shape \({n},\), need \(3,\)"):
        confusion_table(data["y_true"], np.zeros(n, dtype=int), data["labels"])


@pytest.mark.parametrize("n_labels", [2, 4])
def test_label_count_must_match_probs(n_labels: int) -> None:
    data = random_cv(n_classes=3, per_class=1, n_folds=1)
    with pytest.raises(ValueError, match=rf"got {n_labels} labels for probs of shape \(3, 3\)"):
        oof_predictions(data["filenames"], data["folds"], data["y_true"], data["probs"],
                        [f"l{i}" for i in range(n_labels)])


def test_target_index_range() -> None:
    probs = np.full((1, 3), 1 / 3)
    assert classification_metrics(np.array([2]), probs, 3)["n"] == 1  # the largest valid index
    for bad in (3, -1):
        with pytest.raises(ValueError, match=r"y_true holds class indices in .* outside \[0, 2\]"):
            classification_metrics(np.array([bad]), probs, 3)
    with pytest.raises(ValueError, match="integer class indices"):
        classification_metrics(np.array([1.0]), probs, 3)


def test_degenerate_inputs() -> None:
    with pytest.raises(ValueError, match="n_classes must be >= 2, got 1"):
        classification_metrics(np.array([0]), np.ones((1, 1)), 1)
    with pytest.raises(ValueError, match="empty"):
        classification_metrics(np.zeros(0, dtype=int), np.zeros((0, 3)), 3)
    with pytest.raises(ValueError, match="NaN or infinite"):
        classification_metrics(np.array([0]), np.array([[np.nan, 0.5, 0.5]]), 3)
    with pytest.raises(ValueError, match=r"square and non-empty, got shape \(2, 3\)"):
        plot_confusion(pd.DataFrame(np.zeros((2, 3))), "unused.png")
