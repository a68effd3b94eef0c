"""Dropout on CPU from 16-bit random words instead of per-element Bernoulli draws.

PyTorch's CPU dropout (``F.dropout`` and SDPA's ``dropout_p``) draws one Bernoulli variate per
element with ``bernoulli_``, which is scalar code: on SASRec's prefix windows it was 30% of a
training step's CPU time (bench/profile_hot_paths.py, one thread: 1.98 of 6.66 s over 60 steps).
Here the keep mask compares 16-bit lanes of ``random_()``'s 64-bit words with a threshold:
about 20x cheaper per element, the same generator (``torch.manual_seed`` makes it reproducible),
keep probability ``1 - p`` to within 2^-16. Other devices keep PyTorch's own dropout.
``RECEXP_CPU_DROPOUT=torch`` turns this route off (A/B measurements).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from recexp.runtime.envvars import setting

_LANES = 3  # random_() fills int64 words with 63 random bits: the three low 16-bit lanes are full


@functools.cache
def fast_route() -> bool:
    return setting("RECEXP_CPU_DROPOUT") != "torch"


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | str = "cpu",
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean tensor of ``shape``, each element True with probability ``1 - round(p * 2^16) / 2^16``."""
    n = math.prod(shape)
    words = torch.empty(-(-n // _LANES), dtype=torch.int64, device=device).random_(generator=generator)
    lanes = words.view(torch.int16).view(-1, 4)[:, :_LANES]  # little-endian: lane 3 holds the top bits
    threshold = round(p * 65536) - 32768  # an int16 lane is >= threshold with probability 1 - p
    return (lanes >= threshold).view(-1)[:n].view(shape)


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout(x, p, training)``; on CPU the mask comes from :func:`keep_mask`."""
    if not training or p <= 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0 or not fast_route():
        return F.dropout(x, p, training)
    return x * keep_mask(x.shape, p).to(x.dtype).mul_(1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same arguments, no state) through :func:`dropout`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
              p: float, training: bool) -> torch.Tensor:
    """``F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p if training else 0)``
    (``mask`` boolean, True = may attend). With dropout on CPU it is computed here as SDPA's own
    math path does (scores, masked softmax, dropout, weighted sum), the dropout from
    :func:`keep_mask`; elsewhere it is SDPA."""
    if not training or p <= 0.0 or q.device.type != "cpu" or not fast_route():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p if training else 0.0)
    s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return dropout(torch.softmax(s, dim=-1), p, True) @ v
