"""Model shapes, configuration checks and augmentations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.augment import (
    filter_augment, freq_mixstyle, freq_warp, level_and_noise, mix_sounds, mixup, onset_cut, peak_window,
    spec_augment, time_stretch, warp_bands,
)
from training.models import (
    PCEN, BasicBlock, Classifier, ModelConfig, RelaxedFreqNorm, build_model, lifter_matrix, pool,
)

TINY = ModelConfig(stem_channels=4, stem_stride=2, widths=(4, 8), dropout=0.0)


@pytest.mark.parametrize(("name", "pooling"), [("resnet", "mean"), ("cnn", "mean"), ("crnn", "mean"),
                                               ("resnet", "bands"), ("cnn", "bands"), ("cnn", "stats"),
                                               ("resnet", "meanmax")])
@pytest.mark.parametrize("frames", [1, 7, 216])
def test_networks_take_any_length(name: str, pooling: str, frames: int) -> None:
    cfg = ModelConfig(name=name, stem_channels=4, widths=(4, 8), hidden=6, dropout=0.0, pooling=pooling)
    model = build_model(cfg, n_mels=32, n_classes=10).eval()
    assert model(torch.randn(3, 32, frames)).shape == (3, 10)


def test_pooling_reduces_conv_features_as_configured() -> None:
    x = torch.randn(2, 3, 4, 5)  # (batch, channels, rows, frames)
    rows_mean = x.numpy().mean(axis=2)
    torch.testing.assert_close(pool(x, "mean"), x.mean(dim=(2, 3)))
    torch.testing.assert_close(pool(x, "bands"), x.mean(dim=3).reshape(2, 12))
    stats = pool(x, "stats").numpy()
    np.testing.assert_allclose(stats[:, :3], rows_mean.mean(axis=2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats[:, 3:], rows_mean.std(axis=2), rtol=1e-4, atol=1e-3)
    steady = x[..., :1].expand(2, 3, 4, 5)
    assert pool(steady, "stats")[:, 3:].max() < 1e-2  # no variation over frames: std about 0
    np.testing.assert_allclose(pool(x, "meanmax").numpy(), rows_mean.max(axis=2) + rows_mean.mean(axis=2),
                               rtol=1e-5, atol=1e-6)


def test_meanmax_pooling_reads_a_padded_word_at_full_strength() -> None:
    """A word's features followed by frames of zero (silence after the last ReLU): "mean" falls with the
    padding, the maximum in "meanmax" does not."""
    word = torch.rand(2, 3, 4, 5) + 1.0  # (batch, channels, rows, frames)
    padded = torch.cat([word, torch.zeros(2, 3, 4, 15)], dim=3)
    torch.testing.assert_close(pool(padded, "mean"), pool(word, "mean") / 4)
    torch.testing.assert_close(pool(padded, "meanmax") - pool(padded, "mean"), word.mean(dim=2).amax(dim=2))


def test_relaxed_freq_norm_matches_its_definition() -> None:
    """share * (each row over channels and frames) + (1 - share) * (the whole example), by numpy."""
    x = torch.randn(2, 3, 4, 5) * 3 + 1  # (batch, channels, rows, frames)
    a = x.numpy().astype(np.float64)
    by_row = (a - a.mean(axis=(1, 3), keepdims=True)) / np.sqrt(a.var(axis=(1, 3), keepdims=True) + 1e-5)
    whole = (a - a.mean(axis=(1, 2, 3), keepdims=True)) / np.sqrt(a.var(axis=(1, 2, 3), keepdims=True) + 1e-5)
    np.testing.assert_allclose(RelaxedFreqNorm(0.3)(x).numpy(), 0.3 * by_row + 0.7 * whole, rtol=1e-4, atol=1e-5)


def test_relaxed_freq_norm_removes_each_bands_gain_in_its_share() -> None:
    """A gain and offset per row (a microphone's colouring) vanish with the whole share on frequency, and
    only in part when relaxed; one gain and offset for the whole example vanish either way."""
    x = torch.randn(2, 3, 4, 5)
    gain, offset = torch.rand(1, 1, 4, 1) * 4 + 0.5, torch.randn(1, 1, 4, 1) * 5
    full, relaxed = RelaxedFreqNorm(1.0), RelaxedFreqNorm(0.5)
    torch.testing.assert_close(full(x * gain + offset), full(x), atol=1e-4, rtol=1e-4)
    assert (relaxed(x * gain + offset) - relaxed(x)).abs().max() > 0.1
    torch.testing.assert_close(relaxed(x * 3.0 - 2.0), relaxed(x), atol=1e-4, rtol=1e-4)


def test_freq_norm_sits_before_each_resnet_stage_and_only_there() -> None:
    cfg = ModelConfig(stem_channels=4, widths=(4, 8, 8), dropout=0.0, freq_norm=0.5)
    model = build_model(cfg, n_mels=32, n_classes=10)
    assert sum(isinstance(m, RelaxedFreqNorm) for m in model.modules()) == 3
    assert model.eval()(torch.randn(3, 32, 9)).shape == (3, 10)
    with pytest.raises(ValueError, match="freq_norm must be in"):
        ModelConfig(name="cnn", freq_norm=0.5)
    with pytest.raises(ValueError, match="freq_norm must be in"):
        ModelConfig(freq_norm=1.5)


@pytest.mark.parametrize(("name", "n_mels", "rows"), [("resnet", 64, 16), ("resnet", 30, 8), ("cnn", 64, 8)])
def test_band_pooling_keeps_the_mel_rows_the_strides_leave(name: str, n_mels: int, rows: int) -> None:
    """widths (4, 8): resnet halves the mel axis in stem and second stage; cnn in stem and both maxpools."""
    cfg = ModelConfig(name=name, stem_channels=4, widths=(4, 8), hidden=6, dropout=0.0, pooling="bands")
    model = build_model(cfg, n_mels=n_mels, n_classes=3)
    first = model.head if name == "resnet" else model.head[0]
    assert first.in_features == 8 * rows
    assert all(not bn.num_batches_tracked for bn in model.modules() if isinstance(bn, torch.nn.BatchNorm2d))
    x = torch.randn(2, n_mels, 20)
    torch.testing.assert_close(model.eval()(x), torch.cat([model(x[:1]), model(x[1:])]), atol=1e-5, rtol=1e-5)


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


def test_top_db_makes_the_network_blind_to_level_and_deep_silence() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(stem_channels=4, widths=(4, 8), dropout=0.0, top_db=60.0),
                        n_mels=16, n_classes=3)
    model(torch.randn(8, 16, 30) * 20 - 40)  # one training step's worth of BatchNorm statistics
    model.eval()
    x = torch.full((2, 16, 30), -100.0)
    x[:, :, 5:15] = -30 + 10 * torch.randn(2, 16, 10)  # sounds in digital silence
    quieter = x - torch.tensor([15.0, 35.0]).view(2, 1, 1)  # recorded lower, by 15 and 35 dB
    torch.testing.assert_close(model(quieter), model(x), atol=1e-5, rtol=1e-5)
    # The silence lies more than top_db below the peak either way: clamped to the same floor.
    plain = build_model(ModelConfig(stem_channels=4, widths=(4, 8), dropout=0.0), n_mels=16, n_classes=3)
    plain.load_state_dict(model.state_dict())
    assert not torch.allclose(plain.eval()(quieter), plain(x), atol=1e-3)  # absolute dB: not blind
    with pytest.raises(ValueError, match="top_db"):
        ModelConfig(top_db=-1.0)


def test_mean_norm_makes_the_network_blind_to_a_fixed_frequency_response() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(stem_channels=4, widths=(4, 8), dropout=0.0, mean_norm=True)
    model = build_model(cfg, n_mels=16, n_classes=3)
    model(torch.randn(8, 16, 30) * 20 - 40)
    model.eval()
    x = torch.randn(2, 16, 30) * 10 - 40
    coloured = x + torch.linspace(-12, 6, 16).view(1, 16, 1)  # another microphone's response, dB
    torch.testing.assert_close(model(coloured), model(x), atol=1e-5, rtol=1e-5)
    plain = build_model(ModelConfig(stem_channels=4, widths=(4, 8), dropout=0.0), n_mels=16, n_classes=3)
    plain.load_state_dict(model.state_dict())
    assert not torch.allclose(plain.eval()(coloured), plain(x), atol=1e-3)


def test_cepstra_keep_the_spectral_envelope_and_drop_the_pitch_harmonics() -> None:
    """``cepstra``: each frame is its first coefficients of the orthonormal DCT (scipy's, as MFCCs)
    transformed back, so a ripple across mel bands faster than them (a voice's harmonics) is invisible."""
    from scipy.fft import dct, idct

    frames = np.random.default_rng(0).normal(-40, 10, (16, 5))
    kept = dct(frames, axis=0, norm="ortho")
    kept[6:] = 0.0
    np.testing.assert_allclose(lifter_matrix(16, 6).double().numpy() @ frames, idct(kept, axis=0, norm="ortho"),
                               atol=1e-5)
    torch.manual_seed(0)
    cfg = ModelConfig(stem_channels=4, widths=(4, 8), dropout=0.0, cepstra=6)
    model = build_model(cfg, n_mels=16, n_classes=3)
    model(torch.randn(8, 16, 30) * 20 - 40)
    model.eval()
    x = torch.randn(2, 16, 30) * 10 - 40
    ripple = 6.0 * torch.cos(torch.pi / 16 * (torch.arange(16) + 0.5) * 9).view(1, 16, 1)  # quefrency 9 >= 6
    torch.testing.assert_close(model(x + ripple), model(x), atol=1e-4, rtol=1e-4)
    plain = build_model(ModelConfig(stem_channels=4, widths=(4, 8), dropout=0.0), n_mels=16, n_classes=3)
    plain.load_state_dict(model.state_dict(), strict=False)  # all but the lifter
    assert not torch.allclose(plain.eval()(x + ripple), plain(x), atol=1e-3)
    with pytest.raises(ValueError, match="cepstra"):
        build_model(ModelConfig(cepstra=16), n_mels=16, n_classes=3)


@pytest.mark.parametrize("frames", [3.0, 40.0])
def test_pcen_is_the_recursive_filter_of_librosa_pcen(frames: float) -> None:
    """The truncated convolution equals the recursive smoothing M[t] = s E[t] + (1 - s) M[t-1] started
    at the first frame's level (librosa.pcen's defaults), also long after a 30 dB louder stretch."""
    from scipy.signal import lfilter, lfilter_zi

    torch.manual_seed(0)
    db = torch.randn(2, 8, 300) * 10 - 30
    quiet = db.clone()
    db[:, :, 100:140] += 30.0
    with torch.no_grad():
        out, quiet = (PCEN(8, frames)(x).numpy() for x in (db, quiet))
    power = 10.0 ** (db.double().numpy() / 10.0)
    s = (np.sqrt(1 + 4 * frames**2) - 1) / (2 * frames**2)
    smooth = lfilter([s], [1, s - 1], power, axis=-1, zi=lfilter_zi([s], [1, s - 1]) * power[..., :1])[0]
    reference = (power / (1e-6 + smooth) ** 0.98 + 2.0) ** 0.5 - 2.0**0.5
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-4)
    assert np.abs(out - quiet)[:, :, 140:160].max() > 0.01  # the loud stretch still weighs on the average
    with pytest.raises(ValueError, match="pcen_frames"):
        ModelConfig(pcen_frames=-1.0)


def test_pcen_smooths_in_float32_under_autocast() -> None:
    """bfloat16 autocast (training on CUDA) would round the long moving average to 8 bits."""
    torch.manual_seed(0)
    db, pcen = torch.randn(2, 8, 300) * 10 - 30, PCEN(8, 17.0)
    with torch.no_grad():
        exact = pcen(db)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = pcen(db)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, exact, rtol=0, atol=1e-6)


def test_pcen_exponents_train_per_band() -> None:
    model = build_model(ModelConfig(stem_channels=4, widths=(4, 8), pcen_frames=5.0), n_mels=16, n_classes=3)
    model(torch.randn(4, 16, 30) * 10 - 40).sum().backward()
    for p in (model.pcen.log_alpha, model.pcen.log_delta, model.pcen.log_r):
        assert p.shape == (16,) and p.grad is not None and p.grad.abs().sum() > 0
    assert "pcen.log_r" in model.state_dict() and "pcen.kernel" not in model.state_dict()  # rebuilt from cfg


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
        ({"pooling": "max"}, "pooling must be one of"),
        ({"name": "crnn", "pooling": "bands"}, r"pooling must be one of .* \(crnn: mean\)"),
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


def test_mix_sounds_adds_powers_at_the_targets_ratio_whatever_the_levels() -> None:
    torch.manual_seed(0)
    batch, n_mels, frames = 6, 4, 5
    # Example i: a steady sound in band i % n_mels only, at a level 10 * i dB (the rest silent).
    x = torch.full((batch, n_mels, frames), -100.0)
    for i in range(batch):
        x[i, i % n_mels] = 10.0 * i
    y = torch.nn.functional.one_hot(torch.arange(batch), batch).float()
    mx, my = mix_sounds(x, y, alpha=0.4)
    torch.testing.assert_close(my.sum(dim=1), torch.ones(batch))
    assert torch.all(my.max(dim=1).values >= 0.5)
    for i in range(batch):
        r = my[i, i]
        j = int(torch.argmax(torch.where(torch.arange(batch) == i, -1.0, my[i])))  # the partner
        if r > 1 - 1e-5 or i % n_mels == j % n_mels:
            continue
        # Whatever the two levels, the mixture holds the two sounds in the power ratio (r / (1 - r))^2.
        ratio_db = mx[i, i % n_mels, 0] - mx[i, j % n_mels, 0]
        torch.testing.assert_close(ratio_db, 20 * torch.log10(r / (1 - r)), atol=1e-3, rtol=0)
    # A sound mixed with a copy of itself, louder or quieter, keeps its shape.
    same = torch.randn(1, n_mels, frames).repeat(batch, 1, 1) * 10 + torch.arange(batch).view(-1, 1, 1) * 6.0
    ms, _ = mix_sounds(same, y, alpha=0.4)
    shape = ms - ms.amax(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(shape, (same - same.amax(dim=(1, 2), keepdim=True)), atol=1e-3, rtol=0)
    state = torch.get_rng_state()
    same_x, same_y = mix_sounds(x, y, alpha=0.0)
    assert same_x is x and same_y is y and torch.equal(torch.get_rng_state(), state)


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


def test_freq_warp_moves_a_formant_by_the_drawn_factor() -> None:
    torch.manual_seed(0)
    bands = torch.arange(40, dtype=torch.float32)
    x = (-80 + 80 * torch.exp(-(((bands - 20) / 4) ** 2))).view(1, 40, 1).expand(64, 40, 5)  # a formant at 20
    out = freq_warp(x, max_warp=0.2)
    peak = out.mean(dim=2).argmax(dim=1).float()  # (batch,) the formant after warping
    assert out.shape == x.shape and 20 * 0.8 - 1 <= float(peak.min()) and float(peak.max()) <= 20 * 1.2 + 1
    assert float(peak.min()) < 19 and float(peak.max()) > 21  # both directions occur
    peak_db = out.amax(dim=(1, 2))
    assert float(peak_db.max()) <= 1e-4 and float(peak_db.min()) > -3  # interpolated, not amplified
    state = torch.get_rng_state()
    assert freq_warp(x, 0.0) is x and torch.equal(torch.get_rng_state(), state)  # off: no draws


def test_warp_bands_moves_a_formant_by_a_given_factor_without_draws() -> None:
    bands = torch.arange(40, dtype=torch.float32)
    x = (-80 + 80 * torch.exp(-(((bands - 20) / 4) ** 2))).view(1, 40, 1).expand(3, 40, 5)  # a formant at 20
    state = torch.get_rng_state()
    for factor, expected in ((0.9, 18), (1.1, 22)):
        assert warp_bands(x, factor).mean(dim=2).argmax(dim=1).tolist() == [expected] * 3
    per_example = warp_bands(x, torch.tensor([[0.9], [1.0], [1.1]]))
    torch.testing.assert_close(per_example[0], warp_bands(x, 0.9)[0])
    torch.testing.assert_close(per_example[1], x[1])
    assert torch.equal(torch.get_rng_state(), state)


def test_peak_window_crops_a_random_window_that_holds_the_loudest_frame() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 8, 100) - 60
    peaks = torch.tensor([0, 5, 50, 97, 99] * 12 + [30] * 4)  # (64,) near both edges and inside
    x[torch.arange(64), 3, peaks] = 0.0  # each example's loudest band-frame
    out = peak_window(x, 0.3)
    assert out.shape == (64, 8, 30)
    starts = []
    for i in range(64):  # a contiguous slice of the example, holding its peak
        start = int(torch.nonzero(x[i, 0] == out[i, 0, 0])[0])
        torch.testing.assert_close(out[i], x[i, :, start:start + 30])
        assert start <= int(peaks[i]) < start + 30
        starts.append(start)
    inside = [s for s, p in zip(starts, peaks.tolist()) if p == 50]
    assert min(inside) < 30 and max(inside) > 40  # anywhere that keeps the peak
    state = torch.get_rng_state()
    assert peak_window(x, 0.0) is x and peak_window(x, 1.0) is x  # off or whole: no draws
    assert torch.equal(torch.get_rng_state(), state)


def test_freq_mixstyle_keeps_each_band_pattern_and_mixes_band_statistics() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 8, 50) * torch.linspace(1, 8, 8).view(1, 8, 1) - torch.arange(64.0).view(64, 1, 1)
    mu, sigma = x.mean(dim=2, keepdim=True), x.std(dim=2, keepdim=True)
    out = freq_mixstyle(x, p=1.0)
    out_mu, out_sigma = out.mean(dim=2, keepdim=True), out.std(dim=2, keepdim=True)
    torch.testing.assert_close((out - out_mu) / out_sigma, (x - mu) / sigma, atol=1e-4, rtol=1e-4)  # same shape
    # Each band's new statistics mix the example's and another's: within the batch's range, and a
    # level moves towards another of the levels 0..-63, sometimes far.
    for new, old in ((out_mu, mu), (out_sigma, sigma)):
        assert torch.all(new >= old.amin(dim=0) - 1e-4) and torch.all(new <= old.amax(dim=0) + 1e-4)
    assert float((out_mu - mu).abs().amax()) > 10
    kept = freq_mixstyle(x, p=1e-9)  # no example drawn: all keep their own statistics
    torch.testing.assert_close(kept, x, atol=1e-4, rtol=1e-4)
    state = torch.get_rng_state()
    assert freq_mixstyle(x, 0.0) is x and torch.equal(torch.get_rng_state(), state)  # off: no draws


def test_filter_augment_adds_one_smooth_bounded_response_per_example() -> None:
    torch.manual_seed(0)
    x = torch.randn(256, 32, 20) * 10
    gain = filter_augment(x, max_db=6.0) - x  # (batch, n_mels, frames)
    torch.testing.assert_close(gain, gain[:, :, :1].expand_as(gain))  # the same in every frame: a filter
    response = gain[:, :, 0]  # (batch, n_mels)
    assert float(response.abs().max()) <= 6.0 + 1e-4
    # Piecewise linear through 5 points: at most 3 kinks, so few band-to-band slope changes.
    kinks = (response.diff(dim=1).diff(dim=1).abs() > 1e-3).sum(dim=1)
    assert int(kinks.max()) <= 2 * 3  # a kink between two bands bends two second differences
    assert float(response.std(dim=0).mean()) > 2  # examples differ, responses span the range
    state = torch.get_rng_state()
    assert filter_augment(x, 0.0) is x and torch.equal(torch.get_rng_state(), state)  # off: no draws


def test_level_and_noise_shift_and_fill_within_limits() -> None:
    torch.manual_seed(0)
    x = torch.full((32, 16, 50), -100.0)
    x[:, :, 10:20] = -20.0  # a sound in silence
    shifted = level_and_noise(x, gain_db=6.0, noise_db=0.0)
    offset = shifted - x  # one level per example
    assert torch.allclose(offset, offset[:, :1, :1].expand_as(x), atol=1e-4) and float(offset.abs().max()) <= 6.0
    noisy = level_and_noise(x, gain_db=0.0, noise_db=20.0)
    silence = noisy[:, :, 30:]  # the noise floor: 20-50 dB below the peak, tilted +-5 dB at the edges
    assert float(silence.max()) <= -20 - 20 + 5 + 1e-4 and float(silence.min()) >= -20 - 50 - 5 - 1e-4
    assert torch.all(noisy >= x) and float((noisy[:, :, 10:20] - x[:, :, 10:20]).max()) < 0.14  # +10 log10(1 + 10^-1.5)
    state = torch.get_rng_state()
    assert level_and_noise(x, 0.0, 0.0) is x and torch.equal(torch.get_rng_state(), state)


def test_time_stretch_moves_an_onset_by_the_drawn_factor_and_pads_with_silence() -> None:
    torch.manual_seed(0)
    x = torch.full((64, 8, 100), -100.0)
    x[:, :, 40:] = -20.0  # a sound starting at frame 40, lasting to the end
    out = time_stretch(x, max_stretch=0.25)
    onset = (out[:, 0, :] > -60).float().argmax(dim=1).float()  # (batch,) frame where it starts
    assert out.shape == x.shape and 40 / 1.25 - 1 <= float(onset.min()) and float(onset.max()) <= 40 / 0.75 + 1
    assert float(onset.min()) < 38 and float(onset.max()) > 42  # faster and slower both occur
    faster = onset < 39  # read past the end: those frames are the example's silence
    assert torch.all(out[faster, :, -1] == -100.0) and float(out.max()) <= -20 + 1e-4
    state = torch.get_rng_state()
    assert time_stretch(x, 0.0) is x and torch.equal(torch.get_rng_state(), state)  # off: no draws


def test_onset_cut_starts_examples_later_at_most_at_their_peak() -> None:
    torch.manual_seed(0)
    x = torch.full((256, 8, 100), -100.0)
    x[:, :, 10:60] = -20.0  # a word from frame 10 to 59, loudest at frame 30
    x[:, :, 30] = 0.0
    out = onset_cut(x, p=0.5)
    assert out.shape == x.shape
    cuts = 30 - out[:, 0, :].argmax(dim=1)  # (batch,) frames each example lost
    for i, k in enumerate(cuts.tolist()):  # the rest moved to the start, silence after it
        torch.testing.assert_close(out[i, :, : 100 - k], x[i, :, k:])
        assert torch.all(out[i, :, 100 - k :] == -100.0)
    assert int(cuts.min()) == 0 and int(cuts.max()) <= 30  # at most it starts at its loudest frame
    assert 0.4 < float((cuts == 0).float().mean()) < 0.7  # about half kept (and a few drew 0)
    assert int(cuts.max()) > 25 and int(((cuts > 0) & (cuts < 10)).sum()) > 0  # up to the peak
    state = torch.get_rng_state()
    assert onset_cut(x, 0.0) is x and torch.equal(torch.get_rng_state(), state)  # off: no draws
