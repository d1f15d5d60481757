"""Batch augmentations on log-mel features: Mixup, between-class mixing of sounds, SpecAugment
time/frequency masks, random windows around each clip's loudest frame, and the recording conditions
of other speakers and microphones: frequency warping (vocal tract length), time stretching (speaking
rate), level shifts, a stationary noise floor, another clip's spectral colouring (frequency-wise
MixStyle), a random smooth filter (FilterAugment) and a recording begun mid-word (onset cut).

All draw from torch's global generator: seed it (``torch.manual_seed``) for repeatable runs;
each is the identity, and draws nothing, when its strength is 0.
"""

from __future__ import annotations

import torch


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each example with a random partner (Zhang et al., 2018).

    x: (batch, ...) features, y: (batch, n_classes) one-hot or soft targets.
    Returns mixed x and y of the same shapes; identity when ``alpha <= 0``.
    """
    if alpha <= 0:
        return x, y
    lam = torch.distributions.Beta(alpha, alpha).sample((x.shape[0],)).to(x.device)  # (batch,)
    lam = torch.maximum(lam, 1 - lam)  # the example keeps the larger share
    perm = torch.randperm(x.shape[0], device=x.device)
    lam_x = lam.view(-1, *([1] * (x.dim() - 1)))
    return lam_x * x + (1 - lam_x) * x[perm], lam[:, None] * y + (1 - lam[:, None]) * y[perm]


def mix_sounds(x: torch.Tensor, y: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each example with a random partner as two sounds played together: between-class
    learning (Tokozume et al., 2018) on log-mel in dB.

    x: (batch, n_mels, frames) log-mel power in dB, y: (batch, n_classes) targets. Mixup averages
    the dB values (the powers' geometric mean, which no overlay of the two sounds produces); here
    the powers add, each clip's waveform scaled by ``p`` and ``1 - p`` (then normalised by
    ``sqrt(p^2 + (1 - p)^2)``), with ``p`` chosen from the two clips' peak frame levels so that
    the mixture sounds ``r : 1 - r``; the targets mix ``r : 1 - r``, ``r ~ Beta(alpha, alpha)``,
    the example keeping the larger share. Returns mixed x and y of the same shapes; identity,
    drawing nothing, when ``alpha <= 0``.
    """
    if alpha <= 0:
        return x, y
    r = torch.distributions.Beta(alpha, alpha).sample((x.shape[0],)).to(x.device)  # (batch,)
    r = torch.maximum(r, 1 - r).clamp(max=1 - 1e-6)
    perm = torch.randperm(x.shape[0], device=x.device)
    power = 10 ** (x / 10)  # (batch, n_mels, frames)
    gain = 10 * torch.log10(power.sum(dim=1).amax(dim=1))  # (batch,) dB of each clip's loudest frame
    p = 1 / (1 + 10 ** ((gain - gain[perm]) / 20) * (1 - r) / r)  # (batch,) waveform coefficient
    p2, q2 = (p * p).view(-1, 1, 1), ((1 - p) * (1 - p)).view(-1, 1, 1)
    mixed = (p2 * power + q2 * power[perm]) / (p2 + q2)
    return 10 * torch.log10(mixed), r[:, None] * y + (1 - r[:, None]) * y[perm]


def spec_augment(
    x: torch.Tensor,
    time_mask: float,
    freq_mask: float,
    n_masks: int,
) -> torch.Tensor:
    """SpecAugment masks (Park et al., 2019) on (batch, n_mels, frames) log-mel.

    Each example gets ``n_masks`` time masks of up to ``time_mask`` of its frames and
    ``n_masks`` frequency masks of up to ``freq_mask`` of its bands, filled with the
    example's mean. Returns a new tensor of the same shape.
    """
    batch, n_mels, frames = x.shape
    keep = torch.ones_like(x, dtype=torch.bool)
    for size, frac, axis in ((frames, time_mask, 2), (n_mels, freq_mask, 1)):
        max_width = int(size * frac)
        if max_width < 1:
            continue
        pos = torch.arange(size, device=x.device).view(1, 1, size)  # (1, 1, size)
        width = torch.randint(0, max_width + 1, (batch, n_masks, 1), device=x.device)
        start = (torch.rand((batch, n_masks, 1), device=x.device) * (size - width + 1)).long()
        masked = ((pos >= start) & (pos < start + width)).any(dim=1)  # (batch, size)
        keep &= ~(masked[:, None, :] if axis == 2 else masked[:, :, None])
    fill = x.mean(dim=(1, 2), keepdim=True)
    return torch.where(keep, x, fill)


def interpolate(x: torch.Tensor, src: torch.Tensor, dim: int) -> torch.Tensor:
    """Each example of x (batch, n_mels, frames) read at fractional positions ``src`` (batch, size)
    along ``dim`` (1: bands, 2: frames), linearly interpolated; positions past the end read the
    last one. Returns (batch, n_mels, frames)."""
    size = x.shape[dim]
    src = src.clamp(max=size - 1)
    lo = src.floor().long()
    hi = (lo + 1).clamp(max=size - 1)
    shape = (x.shape[0], size, 1) if dim == 1 else (x.shape[0], 1, size)
    w = (src - lo).view(shape)
    index = lambda i: i.view(shape).expand_as(x)  # noqa: E731
    return torch.gather(x, dim, index(lo)) * (1 - w) + torch.gather(x, dim, index(hi)) * w


def freq_warp(x: torch.Tensor, max_warp: float) -> torch.Tensor:
    """Stretch or squeeze each example's mel axis by a factor in ``[1 - max_warp, 1 + max_warp]``.

    x: (batch, n_mels, frames) log-mel. Band ``i`` of the result is band ``i / factor`` of the
    input, linearly interpolated (the top band repeats past the edge): the shift of formants
    between speakers with shorter or longer vocal tracts (VTLP, Jaitly & Hinton, 2013).
    """
    if max_warp <= 0:
        return x
    factor = 1 + (torch.rand(x.shape[0], 1, device=x.device) * 2 - 1) * max_warp  # (batch, 1)
    return warp_bands(x, factor)


def warp_bands(x: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """x (batch, n_mels, frames) with its mel axis stretched by ``factor`` (a float, or (batch, 1) per
    example): band ``i`` of the result is band ``i / factor`` of the input, linearly interpolated,
    the top band repeating past the edge. Returns (batch, n_mels, frames)."""
    bands = torch.arange(x.shape[1], device=x.device) / torch.as_tensor(factor, device=x.device)
    return interpolate(x, bands.expand(x.shape[0], -1), dim=1)


def time_stretch(x: torch.Tensor, max_stretch: float) -> torch.Tensor:
    """Play each example faster or slower by a factor in ``[1 - max_stretch, 1 + max_stretch]``.

    x: (batch, n_mels, frames) log-mel. Frame ``t`` of the result is frame ``t * factor`` of the
    input, linearly interpolated, start-aligned; frames read past the end are the example's
    quietest value (its silence). The speaking rate of another speaker, in the feature domain.
    """
    if max_stretch <= 0:
        return x
    batch, _, frames = x.shape
    factor = 1 + (torch.rand(batch, 1, device=x.device) * 2 - 1) * max_stretch  # (batch, 1)
    src = torch.arange(frames, device=x.device) * factor  # (batch, frames)
    inside = (src <= frames - 1)[:, None, :]
    return torch.where(inside, interpolate(x, src, dim=2), x.amin(dim=(1, 2), keepdim=True))


def onset_cut(x: torch.Tensor, p: float) -> torch.Tensor:
    """Start some examples later in their sound, as a recording begun mid-word does.

    x: (batch, n_mels, frames) log-mel in dB. With probability ``p`` an example loses its first ``k``
    frames, ``k`` drawn uniformly from 0 to the frame of its loudest band-frame (so at most it starts
    there), and the rest moves to the start; the frames freed at the end are the example's quietest
    value (its silence). Returns (batch, n_mels, frames); identity, drawing nothing, when ``p`` is 0.
    """
    if p <= 0:
        return x
    batch, n_mels, frames = x.shape
    peak = x.amax(dim=1).argmax(dim=1)  # (batch,) frame of the loudest band-frame
    cut = (torch.rand(batch, device=x.device) * (peak + 1)).long().clamp(max=peak)  # (batch,) 0..peak
    cut = torch.where(torch.rand(batch, device=x.device) < p, cut, torch.zeros_like(cut))
    src = cut[:, None] + torch.arange(frames, device=x.device)  # (batch, frames)
    index = src.clamp(max=frames - 1).unsqueeze(1).expand(batch, n_mels, frames)
    inside = (src < frames).unsqueeze(1)
    return torch.where(inside, torch.gather(x, 2, index), x.amin(dim=(1, 2), keepdim=True))


def peak_window(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """A random window of ``fraction`` of the frames from each example, containing its loudest frame.

    x: (batch, n_mels, frames) log-mel. Returns (batch, n_mels, round(fraction * frames)): each
    example's window starts anywhere that keeps the frame of its loudest band-frame inside, so a
    short event padded with silence is never cropped away while a steady sound can be read from
    anywhere (Piczak, 2015 and Tokozume et al., 2018 train on windows; these stay around the peak).
    Identity, drawing nothing, when ``fraction`` is 0 or the window would be the whole input.
    """
    batch, n_mels, frames = x.shape
    size = round(fraction * frames)
    if fraction <= 0 or size >= frames:
        return x
    size = max(size, 1)
    peak = x.amax(dim=1).argmax(dim=1)  # (batch,) frame of the loudest band-frame
    lo = (peak - size + 1).clamp(min=0)
    hi = peak.clamp(max=frames - size)  # lo <= hi: the window [start, start + size) holds the peak
    start = lo + (torch.rand(batch, device=x.device) * (hi - lo + 1)).long().clamp(max=hi - lo)
    index = (start[:, None] + torch.arange(size, device=x.device)).unsqueeze(1).expand(batch, n_mels, size)
    return torch.gather(x, 2, index)


def level_and_noise(x: torch.Tensor, gain_db: float, noise_db: float) -> torch.Tensor:
    """Shift each example's level and add a stationary noise floor, in the dB domain.

    x: (batch, n_mels, frames) log-mel in dB. Each example is shifted by a level drawn from
    ``[-gain_db, gain_db]``; then, if ``noise_db > 0``, noise of a random spectral tilt (up to
    +-10 dB across the bands) is added in power at ``noise_db`` to ``noise_db + 30`` dB below the
    example's loudest band-frame: the hiss and hum of another microphone and room.
    """
    if gain_db > 0:
        x = x + (torch.rand(x.shape[0], 1, 1, device=x.device) * 2 - 1) * gain_db
    if noise_db <= 0:
        return x
    batch, n_mels, _ = x.shape
    below = noise_db + torch.rand(batch, 1, 1, device=x.device) * 30  # (batch, 1, 1) dB
    tilt = (torch.rand(batch, 1, 1, device=x.device) * 2 - 1) * 10 * torch.linspace(
        -0.5, 0.5, n_mels, device=x.device).view(1, n_mels, 1)  # (batch, n_mels, 1) dB
    floor = x.amax(dim=(1, 2), keepdim=True) - below + tilt
    return 10 * torch.log10(10 ** (x / 10) + 10 ** (floor / 10))


def freq_mixstyle(x: torch.Tensor, p: float, alpha: float = 0.3, eps: float = 1e-6) -> torch.Tensor:
    """Frequency-wise MixStyle (Zhou et al., 2021; per mel band as in Schmid et al., 2022).

    x: (batch, n_mels, frames) log-mel. With probability ``p`` an example's bands are standardised
    over its frames and given statistics mixed from its own and a random partner's, weight
    ``Beta(alpha, alpha)``: another microphone's and voice's colouring of the same content, the label
    kept. Returns a tensor of the same shape; identity, drawing nothing, when ``p`` is 0.
    """
    if p <= 0:
        return x
    batch = x.shape[0]
    mu = x.mean(dim=2, keepdim=True)  # (batch, n_mels, 1)
    sigma = (x.var(dim=2, keepdim=True) + eps).sqrt()
    lam = torch.distributions.Beta(alpha, alpha).sample((batch, 1, 1)).to(x.device)
    lam = torch.where(torch.rand(batch, 1, 1, device=x.device) < p, lam, torch.ones_like(lam))  # others kept
    perm = torch.randperm(batch, device=x.device)
    mixed_mu = lam * mu + (1 - lam) * mu[perm]
    mixed_sigma = lam * sigma + (1 - lam) * sigma[perm]
    return (x - mu) / sigma * mixed_sigma + mixed_mu


def filter_augment(x: torch.Tensor, max_db: float, n_points: int = 5) -> torch.Tensor:
    """A random smooth filter on each example: another microphone's and room's frequency response.

    x: (batch, n_mels, frames) log-mel in dB. Gains drawn from ``[-max_db, max_db]`` at ``n_points``
    mel positions (the lowest and highest band and, between them, random ones) are linearly
    interpolated across the bands and added to every frame (FilterAugment, Nam et al., 2022, its
    linear type). Returns (batch, n_mels, frames); identity, drawing nothing, when ``max_db`` is 0.
    """
    if max_db <= 0:
        return x
    batch, n_mels, _ = x.shape
    inner = torch.rand(batch, n_points - 2, device=x.device).sort(dim=1).values * (n_mels - 1)
    edges = torch.tensor([[0.0, n_mels - 1.0]], device=x.device).expand(batch, 2)
    points = torch.cat([edges[:, :1], inner, edges[:, 1:]], dim=1)  # (batch, n_points), ascending
    gains = (torch.rand(batch, n_points, device=x.device) * 2 - 1) * max_db  # (batch, n_points) dB
    bands = torch.arange(n_mels, device=x.device, dtype=x.dtype).expand(batch, n_mels).contiguous()
    hi = torch.searchsorted(points, bands, right=True).clamp(1, n_points - 1)  # (batch, n_mels)
    lo = hi - 1
    p_lo, p_hi = points.gather(1, lo), points.gather(1, hi)
    w = ((bands - p_lo) / (p_hi - p_lo).clamp(min=1e-6)).clamp(0, 1)
    gain = gains.gather(1, lo) * (1 - w) + gains.gather(1, hi) * w  # (batch, n_mels)
    return x + gain.unsqueeze(2)
