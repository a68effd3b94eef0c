"""BSARec (Shin et al., AAAI 2024, "An Attentive Inductive Bias for Sequential Recommendation
beyond the Self-Attention"): each layer mixes causal self-attention with a fixed frequency filter.

One block, post-LN as in the authors' code (github.com/yehjin-shin/BSARec, FMLP-Rec lineage):

    F(X) = LN(X + drop(low(X) + beta^2 * (X - low(X))))    beyond-self-attention: beta per channel
    A(X) = LN(X + drop(MHA(X)))                            SASRec's post-LN attention sub-layer
    H    = alpha * F(X) + (1 - alpha) * A(X)
    out  = LN(H + drop(FFN(H)))

``low`` keeps the lowest frequencies of the sequence along time (rfft, zero the rest, irfft).
Ambiguities, and how reading the paper and the authors' code settled them:

* ``alpha`` weighs the frequency (inductive-bias) branch and ``1 - alpha`` the attention: the code
  computes ``alpha * filter + (1 - alpha) * attention``, so the published alpha (Beauty 0.7) means
  0.7 on the filter. alpha = 0 is SASRec's post-LN block (no inner FFN dropout).
* ``c`` counts frequencies of the two-sided spectrum: the code keeps the first ``c // 2 + 1`` rfft
  bins (DC plus the (c - 1) / 2 lowest +-frequency pairs), so c = 1 is the mean, c = 5 three bins.
* Causality and padding: the code filters the whole left-padded window (padding included) and trains
  only its last position. Here position t is filtered over its own prefix of real items (the low pass
  of items s..t read at t): no position sees the future, so every position may be trained
  (``trainer.window_mode=all``) and padding changes nothing; at the last position it is the paper's
  filter on the unpadded sequence. The prefix filters are one precomputed (max_len, max_len) table.
* Layout as the code: LN(item + position) then dropout, N(0, 0.02) init, no sqrt(d) scaling
  (SASRec's ``block=post_ln init=normal emb_scale=false``); beta ("sqrt_beta") drawn from N(0, 1).

``filter_scope=padded`` keeps causality but filters as the code does on a real sequence: position t
is read as the last position of a ``max_len`` window ending at t, its padding counted as zeros (a
fixed causal kernel over lags: the code's broad window low pass, at the cost of the prefix scope).
``filter_scope=window`` is the authors' code instead, quirks included: every input is left-padded
to ``max_len``; padding positions keep LN(position embedding) (not zeroed) and, their keys all
masked by an additive -10000, attend to every position (a softmax of equally shifted scores); the
filter runs over the whole padded window. Position t's filter then sees items after t, so only the
last position may be trained: it needs ``trainer.window_mode=prefixes`` (refused otherwise).
"""

from __future__ import annotations

import torch
from torch import nn

from recexp.data.batches import PREFIXES
from recexp.errors import ConfigError
from recexp.models.sasrec import PostLNBlock, SASRec, attention_mask
from recexp.runtime.gemm import Linear


def low_pass(x: torch.Tensor, c: int) -> torch.Tensor:
    """The paper's low pass along time (dim 1): the ``c // 2 + 1`` lowest rfft bins kept, (B, L, D)."""
    f = torch.fft.rfft(x, dim=1, norm="ortho")  # (B, L // 2 + 1, D)
    f[:, c // 2 + 1 :] = 0
    return torch.fft.irfft(f, n=x.shape[1], dim=1, norm="ortho")


def frequency_filter(x: torch.Tensor, c: int, sqrt_beta: torch.Tensor) -> torch.Tensor:
    """low + beta^2 * high over the whole sequence (the paper's, non-causal), (B, L, D)."""
    low = low_pass(x, c)
    return low + sqrt_beta**2 * (x - low)


def prefix_low_pass_table(max_len: int, c: int) -> torch.Tensor:
    """(max_len, max_len): row m - 1, column k = weight of the item k steps back in the low pass of
    an m-item sequence, read at its last item (built from impulses, in float64)."""
    table = torch.zeros(max_len, max_len, dtype=torch.float64)
    for m in range(1, max_len + 1):
        response = low_pass(torch.eye(m, dtype=torch.float64).unsqueeze(0), c)[0]  # (m, m): [t, impulse j]
        table[m - 1, :m] = response[m - 1].flip(0)  # lag k = m - 1 - j
    return table.float()


def padded_low_pass_table(max_len: int, c: int) -> torch.Tensor:
    """(max_len, max_len), every row the same: column k = weight of the item k steps back in the
    low pass of a zero-padded ``max_len`` window, read at its last position (padding adds zeros)."""
    kernel = low_pass(torch.eye(max_len, dtype=torch.float64).unsqueeze(0), c)[0][max_len - 1].flip(0)
    return kernel.expand(max_len, max_len).contiguous().float()


class PrefixFrequencyFilter(nn.Module):
    """low + beta^2 (x - low) where position t's low pass covers only the keys ``mask`` lets it see."""

    def __init__(self, dim: int, max_len: int, c: int, padded: bool = False) -> None:
        super().__init__()
        self.sqrt_beta = nn.Parameter(torch.randn(dim))  # (D,); 1-D: SASRec's init leaves it as drawn
        table = padded_low_pass_table(max_len, c) if padded else prefix_low_pass_table(max_len, c)
        self.register_buffer("table", table, persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """x (B, L, D), mask (B, 1, L, L) causal + padding -> (B, Lq, D), Lq = 1 with ``last_only``."""
        B, L, _ = x.shape
        allowed = mask[:, 0, -1:] if last_only else mask[:, 0]  # (B, Lq, L)
        Lq = allowed.shape[1]
        # a causal mask over left-padded rows lets query t see its m most recent real items (lags
        # 0..m-1); a padding query sees only itself (m = 1: the identity)
        m = allowed.sum(-1)  # (B, Lq)
        t = torch.arange(L - Lq, L, device=x.device)
        lag = (t.unsqueeze(1) - torch.arange(L, device=x.device)).clamp(min=0)  # (Lq, L)
        w = self.table[m - 1].gather(-1, lag.expand(B, Lq, L)) * allowed  # (B, Lq, L)
        low = w.to(x.dtype) @ x  # (B, Lq, D)
        return low + self.sqrt_beta**2 * (x[:, L - Lq :] - low)


class WindowFrequencyFilter(nn.Module):
    """The authors' code: low + beta^2 (x - low) over the whole (padded) window, not causal."""

    def __init__(self, dim: int, c: int) -> None:
        super().__init__()
        self.sqrt_beta = nn.Parameter(torch.randn(dim))  # (D,)
        self.c = c

    def forward(self, x: torch.Tensor, mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """x (B, L, D) -> (B, Lq, D), Lq = 1 with ``last_only``; ``mask`` is not used."""
        out = frequency_filter(x, self.c, self.sqrt_beta)
        return out[:, -1:] if last_only else out


SCOPES = ("prefix", "padded", "window")


class BSARecBlock(PostLNBlock):
    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float, alpha: float, max_len: int,
                 c: int, scope: str = "prefix") -> None:
        super().__init__(dim, heads, ffn_dim, dropout)
        self.ffn = nn.Sequential(Linear(dim, ffn_dim), nn.GELU(), Linear(ffn_dim, dim))  # the code's: no inner dropout
        self.filter = (WindowFrequencyFilter(dim, c) if scope == "window"
                       else PrefixFrequencyFilter(dim, max_len, c, padded=scope == "padded"))
        self.ln_f = nn.LayerNorm(dim)
        self.alpha = alpha

    def forward(self, x: torch.Tensor, mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        xq = x[:, -1:] if last_only else x  # (B, Lq, D)
        attn = self.ln1(xq + self.drop(self.attn(x, mask, last_only)))
        freq = self.ln_f(xq + self.drop(self.filter(x, mask, last_only)))
        h = self.alpha * freq + (1 - self.alpha) * attn
        return self.ln2(h + self.drop(self.ffn(h)))


class BSARec(SASRec):
    """SASRec's embeddings, masks and scoring (post-LN layout) with BSARec blocks."""

    def __init__(self, num_items: int, num_users: int = 0, max_len: int = 50, hidden_size: int = 64,
                 num_blocks: int = 2, num_heads: int = 1, ffn_dim: int = 256, dropout: float = 0.5,
                 alpha: float = 0.7, c: int = 5, filter_scope: str = "prefix") -> None:
        if filter_scope not in SCOPES:
            raise ConfigError(f"model.filter_scope={filter_scope!r}: expected one of {', '.join(SCOPES)}")
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"model.alpha={alpha}: expected a weight in [0, 1]")
        if c < 1:
            raise ConfigError(f"model.c={c}: must be >= 1")
        super().__init__(num_items, num_users, max_len=max_len, hidden_size=hidden_size, num_blocks=num_blocks,
                         num_heads=num_heads, ffn_dim=ffn_dim, dropout=dropout, causal=True, block="post_ln",
                         init="normal", emb_scale=False, positions="from_end")
        self.alpha, self.c, self.filter_scope = alpha, c, filter_scope
        self.blocks = nn.ModuleList(BSARecBlock(hidden_size, num_heads, ffn_dim, dropout, alpha, max_len, c, filter_scope)
                                    for _ in range(num_blocks))
        self.reset_parameters()

    def check_training(self, window_mode: str) -> None:
        if self.filter_scope == "window" and window_mode not in PREFIXES:
            raise ConfigError(f"model.filter_scope=window filters the whole window, so only its last position may "
                              f"be trained: use trainer.window_mode=prefixes (got {window_mode})")

    def encode(self, seq: torch.Tensor, last_only: bool = False, causal: bool | None = None) -> torch.Tensor:
        if self.filter_scope != "window":
            return super().encode(seq, last_only, causal)
        L = seq.shape[1]
        seq = nn.functional.pad(seq, (self.max_len - L, 0)) if L < self.max_len else seq[:, -self.max_len:]
        pos = torch.arange(1, self.max_len + 1, device=seq.device)
        x = self.emb_drop(self.ln(self.item_emb(seq) + self.pos_emb(pos)))  # padding positions kept
        # a padding query's keys are all masked in the code, i.e. none are: it attends to every position
        mask = attention_mask(seq, True) | (seq == 0).view(*seq.shape, 1).unsqueeze(1)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, last_only and i == len(self.blocks) - 1)
        return x[:, -1:] if last_only else x[:, -L:]
