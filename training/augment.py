"""Batch augmentations on log-mel features: Mixup and SpecAugment time/frequency masks.

Both draw from torch's global generator: seed it (``torch.manual_seed``) for repeatable runs.
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
