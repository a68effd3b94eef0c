"""HSTU (Zhai et al., ICML 2024, "Actions Speak Louder than Words: Trillion-Parameter Sequential
Transducers for Generative Recommendations"): pointwise (softmax-free) gated attention layers.

One layer (the paper's Eq. 1-3; facts checked against the public generative-recommenders code):

    U, V, Q, K = split(SiLU(f1(Norm(X))))                 one projection, no bias
    A          = SiLU(Q K^T + rab) / n, causal            no softmax: weights need not sum to 1
    Y          = X + f2(drop(Norm(A V) * U))

Settled details: ``Norm`` is a LayerNorm without learned scale or bias (the code's ``F.layer_norm``);
``n`` is a constant, the model's ``max_len`` (the code divides by the padded length of its fixed
mask, not by each row's count, so a row's scale does not depend on padding or on the batch; Norm(A V)
is scale-free anyway up to its epsilon); ``rab`` is a learned bias per relative position i - j
(the code adds bucketed time gaps too, when timestamps are given: left out, positions suffice);
each head has its own ``qk_dim`` / ``v_dim`` (the code's dqk / dv), and the layer has no separate
feed-forward. Embeddings are SASRec's (item * sqrt(d) + position, dropout, padding zeroed); positions
count from the window's first item (``from_start``) as the code's right-padded sequences do.
Output: with ``temperature`` set, queries and item embeddings are L2-normalised and scores are
cosine / temperature (the code's ``l2_norm`` user embeddings, ``item_l2_norm`` and temperature
0.05); ``temperature: null`` keeps SASRec's final LayerNorm and plain dot product.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recexp.errors import ConfigError
from recexp.models.sasrec import POSITIONS, SASRec
from recexp.runtime.dropout import Dropout
from recexp.runtime.gemm import Linear


def pointwise_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rab: torch.Tensor,
                        allowed: torch.Tensor, n: int) -> torch.Tensor:
    """SiLU(q k^T + rab) / n on the ``allowed`` pairs (0 elsewhere), times v.

    q (B, H, Lq, dqk), k (B, H, L, dqk), v (B, H, L, dv), rab (Lq, L), allowed (B, 1, Lq, L) -> (B, H, Lq, dv).
    """
    a = F.silu(q @ k.transpose(-1, -2) + rab) / n * allowed  # (B, H, Lq, L)
    return a @ v


class HSTULayer(nn.Module):
    def __init__(self, dim: int, heads: int, qk_dim: int, v_dim: int, max_len: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.qk_dim, self.v_dim, self.max_len = heads, qk_dim, v_dim, max_len
        self.norm_in = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.norm_av = nn.LayerNorm(heads * v_dim, eps=1e-6, elementwise_affine=False)
        self.uvqk = Linear(dim, heads * (2 * v_dim + 2 * qk_dim), bias=False)  # f1
        self.out = Linear(heads * v_dim, dim)  # f2
        self.rab = nn.Parameter(torch.empty(max_len).normal_(0.0, 0.02))  # bias per distance i - j >= 0
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """x (B, L, D), mask (B, 1, L, L) True = may attend -> (B, Lq, D), Lq = 1 with ``last_only``."""
        B, L, _ = x.shape
        H, dqk, dv = self.heads, self.qk_dim, self.v_dim
        u, v, q, k = F.silu(self.uvqk(self.norm_in(x))).split([H * dv, H * dv, H * dqk, H * dqk], dim=-1)
        if last_only:  # the last position's query and gate alone; keys and values span all L
            u, q, mask = u[:, -1:], q[:, -1:], mask[:, :, -1:]
        Lq = q.shape[1]
        q = q.reshape(B, Lq, H, dqk).transpose(1, 2)  # (B, H, Lq, dqk)
        k = k.reshape(B, L, H, dqk).transpose(1, 2)  # (B, H, L, dqk)
        v = v.reshape(B, L, H, dv).transpose(1, 2)  # (B, H, L, dv)
        t = torch.arange(L - Lq, L, device=x.device)
        lag = (t.unsqueeze(1) - torch.arange(L, device=x.device)).clamp(min=0)  # (Lq, L); j > i is masked
        av = pointwise_attention(q, k, v, self.rab[lag], mask, self.max_len)  # (B, H, Lq, dv)
        av = av.transpose(1, 2).reshape(B, Lq, H * dv)  # (B, Lq, H dv)
        return x[:, L - Lq :] + self.out(self.drop(self.norm_av(av) * u))


class L2Scale(nn.Module):
    """x / ||x|| / temperature over the last dim (queries on the unit sphere, scaled)."""

    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1, eps=1e-6) / self.temperature


class HSTU(SASRec):
    """SASRec's embeddings, masks and scoring with HSTU layers."""

    def __init__(self, num_items: int, num_users: int = 0, max_len: int = 50, hidden_size: int = 64,
                 num_blocks: int = 2, num_heads: int = 2, qk_dim: int = 32, v_dim: int = 32,
                 dropout: float = 0.2, temperature: float | None = 0.05, positions: str = "from_start") -> None:
        for key, value in (("num_heads", num_heads), ("qk_dim", qk_dim), ("v_dim", v_dim)):
            if value < 1:
                raise ConfigError(f"model.{key}={value}: must be >= 1")
        if temperature is not None and not temperature > 0:
            raise ConfigError(f"model.temperature={temperature}: expected > 0, or null for a plain dot product")
        if positions not in POSITIONS:
            raise ConfigError(f"model.positions={positions!r}: expected one of {', '.join(POSITIONS)}")
        # SASRec's own blocks are replaced below; one head there skips its divisibility check
        super().__init__(num_items, num_users, max_len=max_len, hidden_size=hidden_size, num_blocks=num_blocks,
                         num_heads=1, ffn_dim=hidden_size, dropout=dropout, causal=True, positions=positions)
        self.blocks = nn.ModuleList(HSTULayer(hidden_size, num_heads, qk_dim, v_dim, max_len, dropout)
                                    for _ in range(num_blocks))
        self.temperature = temperature
        if temperature is not None:
            self.ln = L2Scale(temperature)  # what encode applies last, in place of the final LayerNorm
        self.reset_parameters()

    def item_embeddings(self) -> torch.Tensor:
        emb = super().item_embeddings()  # (N+1, D); row 0 (padding) stays 0
        return emb if self.temperature is None else F.normalize(emb, dim=-1, eps=1e-6)
