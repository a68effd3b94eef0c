"""TV-Rec (Shin et al., NeurIPS 2025, "TV-Rec: Time-Variant Convolutional Filter for Sequential
Recommendation"): self-attention replaced by a convolution whose kernel changes with the position.

One block, post-LN as in the authors' code (github.com/yehjin-shin/TV-Rec, BSARec lineage):

    F(X) = LN(X + drop(H X))            H (L, L): (H X)_t = sum_k h[t, k] X_{t-k}
    out  = LN(F + drop(FFN(F)))         FFN: dense, GELU, dense (no inner dropout)

The kernel row of position t is a mix of M shared basis kernels over lags 0..K (K = max_len):
h = c @ Re(B / ||B||), c (max_len, M) per position, B (M, K + 1) complex with each basis kernel
scaled to unit norm over its lags. The paper writes H as a time-variant graph filter on a directed
cycle over the window right-padded with K - 1 zeros, sum_k diag(h[:, k]) A^k, and the code applies it
in the graph's Fourier basis (eigenvectors of A, complex). A^k shifts the signal k steps, so the
filter is exactly the lag sum above, and it is built here directly as a real (L, L) matrix.

Settled details (from the code; facts, not code, carried over):

* Causality. On the padded cycle position 0 at lag K wraps onto the window's last position (the
  code pads K - 1 zeros, not K), the only entry above the diagonal. Here H is lower-triangular:
  position t reads items <= t, so every position may be trained (``trainer.window_mode=all`` too);
  the last position -- the one the code trains and ranks with -- has the same kernel either way.
* No position embedding (the time-variant kernel carries position): input LN(item), then dropout;
  padding rows are zeroed before every block, as the code does. N(0, 0.02) init for weights and
  embeddings; the basis and the coefficients drawn N(0, 1e-3) (the code's scale).
* Positions count from the end: the most recent item is row ``max_len - 1`` of H whatever the
  sequence length, as in the code's left-padded windows.
* ``reg_weight``: the code's orthogonality penalty on the basis, for its real and imaginary parts
  alike, sum((G - I)^2) with G the Gram matrix of the unit-normed basis kernels, added to the loss
  (:meth:`penalty`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recexp.errors import ConfigError
from recexp.models.sasrec import SASRec
from recexp.runtime.dropout import Dropout
from recexp.runtime.gemm import Linear


def kernel_matrix(h: torch.Tensor) -> torch.Tensor:
    """(L, K + 1) kernel rows h[t, k] -> (L, L) lower-triangular H with H[t, s] = h[t, t - s]."""
    L = h.shape[0]
    lag = torch.arange(L, device=h.device).unsqueeze(1) - torch.arange(L, device=h.device)  # (L, L): t - s
    return h.gather(1, lag.clamp(min=0)) * (lag >= 0)


def ortho_penalty(basis: torch.Tensor) -> torch.Tensor:
    """sum((G - I)^2) for G the Gram matrix of the unit-normed rows of ``basis`` (M, K + 1)."""
    b = F.normalize(basis, dim=1)
    gram = b @ b.T
    return ((gram - torch.eye(b.shape[0], device=b.device, dtype=b.dtype)) ** 2).sum()


class TimeVariantFilter(nn.Module):
    """(H X)_t = sum_k h[t, k] X_{t-k}, h = c @ Re(B / ||B||): M basis kernels mixed per position."""

    def __init__(self, max_len: int, num_basis: int) -> None:
        super().__init__()
        self.basis = nn.Parameter(torch.empty(num_basis, max_len + 1, 2))  # (M, K + 1, re/im), K = max_len
        self.coef = nn.Parameter(torch.empty(max_len, num_basis))  # (max_len, M): c_t
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.basis, 0.0, 1e-3)
        nn.init.normal_(self.coef, 0.0, 1e-3)

    def kernels(self) -> torch.Tensor:
        """(max_len, K + 1): h[t, k], the weight of the item k steps before position t."""
        norm = self.basis.pow(2).sum(dim=(1, 2)).sqrt().unsqueeze(1)  # (M, 1): complex norm over lags
        return self.coef @ (self.basis[..., 0] / norm)

    def matrix(self) -> torch.Tensor:
        """(max_len, max_len) H, lower-triangular."""
        return kernel_matrix(self.kernels())

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """x (B, L, D), L <= max_len, its last row the most recent -> (B, Lq, D), Lq = 1 with ``last_only``."""
        L = x.shape[1]
        H = self.matrix()[-L:, -L:]
        return (H[-1:] if last_only else H).to(x.dtype) @ x

    def penalty(self) -> torch.Tensor:
        return ortho_penalty(self.basis[..., 0]) + ortho_penalty(self.basis[..., 1])


class TVRecBlock(nn.Module):
    def __init__(self, dim: int, ffn_dim: int, dropout: float, max_len: int, num_basis: int) -> None:
        super().__init__()
        self.filter = TimeVariantFilter(max_len, num_basis)
        self.ffn = nn.Sequential(Linear(dim, ffn_dim), nn.GELU(), Linear(ffn_dim, dim))
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        h = self.ln1((x[:, -1:] if last_only else x) + self.drop(self.filter(x, last_only)))
        return self.ln2(h + self.drop(self.ffn(h)))


class TVRec(SASRec):
    """SASRec's item embedding and scoring (post-LN layout, no positions) with TV-Rec blocks."""

    def __init__(self, num_items: int, num_users: int = 0, max_len: int = 50, hidden_size: int = 64,
                 num_blocks: int = 2, ffn_dim: int = 256, dropout: float = 0.5, num_basis: int = 32,
                 reg_weight: float = 0.0) -> None:
        if num_basis < 1:
            raise ConfigError(f"model.num_basis={num_basis}: must be >= 1")
        if reg_weight < 0:
            raise ConfigError(f"model.reg_weight={reg_weight}: must be >= 0")
        super().__init__(num_items, num_users, max_len=max_len, hidden_size=hidden_size, num_blocks=num_blocks,
                         num_heads=1, ffn_dim=ffn_dim, dropout=dropout, causal=True, block="post_ln",
                         init="normal", emb_scale=False)
        self.blocks = nn.ModuleList(TVRecBlock(hidden_size, ffn_dim, dropout, max_len, num_basis)
                                    for _ in range(num_blocks))
        del self.pos_emb  # the time-variant kernels carry position
        self.reg_weight = reg_weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()  # N(0, 0.02) matrices and embeddings
        for block in getattr(self, "blocks", ()):
            if isinstance(block, TVRecBlock):
                block.filter.reset_parameters()  # the code's 1e-3 scale

    def encode(self, seq: torch.Tensor, last_only: bool = False, causal: bool | None = None) -> torch.Tensor:
        """(B, L) item ids -> (B, L, D), or (B, 1, D) with ``last_only``; always causal."""
        seq = seq[:, -self.max_len :]
        real = seq.gt(0).unsqueeze(-1)  # (B, L, 1)
        x = self.emb_drop(self.ln(self.item_emb(seq)))
        for i, block in enumerate(self.blocks):
            x = block(x * real, last_only and i == len(self.blocks) - 1)  # padding rows zeroed, as the code
        return x

    def penalty(self) -> torch.Tensor | None:
        if not self.reg_weight:
            return None
        return self.reg_weight * sum(block.filter.penalty() for block in self.blocks)
