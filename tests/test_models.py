"""Model shapes, configuration checks and augmentations."""

from __future__ import annotations

import pytest
import torch

from training.augment import mixup, spec_augment
from training.models import BasicBlock, Classifier, ModelConfig, build_model

TINY = ModelConfig(stem_channels=4, stem_stride=2, widths=(4, 8), dropout=0.0)


@pytest.mark.parametrize("name", ["resnet", "cnn", "crnn"])
@pytest.mark.parametrize("frames", [1, 7, 216])
def test_networks_take_any_length(name: str, frames: int) -> None:
    cfg = ModelConfig(name=name, stem_channels=4, widths=(4, 8), hidden=6, dropout=0.0)
    model = build_model(cfg, n_mels=32, n_classes=10).eval()
    assert model(torch.randn(3, 32, frames)).shape == (3, 10)


def test_classifier_returns_probabilities() -> None:
    probs = Classifier(build_model(TINY, n_mels=32, n_classes=5).eval())(torch.randn(4, 32, 50))
    assert probs.shape == (4, 5)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(4))


@pytest.mark.parametrize("name", ["resnet", "cnn", "crnn"])
def test_eval_batch_equals_items(name: str) -> None:
    cfg = ModelConfig(name=name, stem_channels=4, widths=(4, 8), hidden=6, dropout=0.0)
    model = build_model(cfg, n_mels=32, n_classes=10).eval()
    x = torch.randn(4, 32, 40)
    torch.testing.assert_close(model(x), torch.cat([model(x[i : i + 1]) for i in range(4)]),
                               atol=1e-5, rtol=1e-5)


def test_stages_widen_and_blocks_repeat() -> None:
    model = build_model(ModelConfig(widths=(8, 16, 32), blocks_per_stage=2), n_mels=16, n_classes=3)
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == 3 * 2
    assert model.head.in_features == 32


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "vgg"}, "model name 'vgg' is not one of"),
        ({"widths": ()}, "widths must be"),
        ({"stem_stride": 3}, "stem_stride in"),
        ({"blocks_per_stage": 0}, "blocks_per_stage, hidden and n_estimators must be >= 1"),
        ({"hidden": 0}, "blocks_per_stage, hidden and n_estimators must be >= 1"),
        ({"dropout": 1.0}, "dropout must be in"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_mixup_mixes_inputs_and_targets_alike() -> None:
    torch.manual_seed(0)
    x = torch.arange(8, dtype=torch.float32).view(8, 1, 1).expand(8, 2, 3)
    y = torch.nn.functional.one_hot(torch.arange(8), 8).float()
    mx, my = mixup(x, y, alpha=0.4)
    torch.testing.assert_close(my.sum(dim=1), torch.ones(8))
    # Each mixed input is the same convex combination of labels as its target.
    torch.testing.assert_close(mx[:, 0, 0], my @ torch.arange(8, dtype=torch.float32))
    assert torch.all(my.max(dim=1).values >= 0.5)
    same_x, same_y = mixup(x, y, alpha=0.0)
    assert same_x is x and same_y is y


def test_spec_augment_masks_within_limits() -> None:
    torch.manual_seed(0)
    x = torch.randn(16, 40, 100) + 5.0
    out = spec_augment(x, time_mask=0.2, freq_mask=0.1, n_masks=1)
    assert out.shape == x.shape
    changed = out != x
    time_masked = changed.all(dim=1).sum(dim=1)  # frames masked across all bands
    freq_masked = changed.all(dim=2).sum(dim=1)  # bands masked across all frames
    assert int(time_masked.max()) <= 20 and int(freq_masked.max()) <= 4
    assert int(changed.sum()) > 0
    torch.testing.assert_close(spec_augment(x, 0.0, 0.0, 2), x)
