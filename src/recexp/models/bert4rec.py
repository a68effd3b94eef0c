"""BERT4Rec (Sun et al., CIKM 2019): a bidirectional transformer trained with the cloze task.

Training: a fraction ``mask_prob`` of each window's items is replaced by the [mask] token
(id ``num_items + 1``) and predicted from both sides; rows where nothing was drawn get their last
item masked so every window contributes. A fraction ``last_prob`` of the windows instead mask
only their newest item, the task evaluation asks for: the authors' data generator adds such
"mask the last item" instances beside its random cloze ones (``mask_last`` in the official
``gen_data_fin.py``). Evaluation: the [mask] token is appended after the
history and its output is the query, so the input never contains the item being predicted.
The encoder is SASRec's (``causal=False``, one extra token id).
"""

from __future__ import annotations

import torch

from recexp.data.batches import Batch
from recexp.errors import ConfigError
from recexp.models.sasrec import SASRec


class BERT4Rec(SASRec):
    def __init__(self, num_items: int, num_users: int = 0, max_len: int = 50, hidden_size: int = 64,
                 num_blocks: int = 2, num_heads: int = 2, ffn_dim: int = 256, dropout: float = 0.2,
                 mask_prob: float = 0.2, last_prob: float = 0.0, block: str = "pre_ln", init: str = "xavier",
                 emb_scale: bool = True, positions: str = "from_end") -> None:
        if not 0.0 < mask_prob <= 1.0:
            raise ConfigError(f"model.mask_prob={mask_prob}: expected a probability in (0, 1]")
        if not 0.0 <= last_prob <= 1.0:
            raise ConfigError(f"model.last_prob={last_prob}: expected a probability in [0, 1]")
        # max_len + 1 positions: a training window (max_len + 1 items) or history + [mask]
        super().__init__(num_items, num_users, max_len=max_len + 1, hidden_size=hidden_size,
                         num_blocks=num_blocks, num_heads=num_heads, ffn_dim=ffn_dim, dropout=dropout,
                         causal=False, extra_tokens=1, block=block, init=init, emb_scale=emb_scale,
                         positions=positions)
        self.mask_id = num_items + 1
        self.mask_prob = mask_prob
        self.last_prob = last_prob

    def cloze(self, window: torch.Tensor, generator: torch.Generator | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) left-padded ids -> (masked input (B, T), targets (B, T): original id where masked,
        0 elsewhere). Masks are drawn from ``generator`` (on the window's device); a row drawn with
        probability ``last_prob`` masks its newest item only."""
        real = window > 0
        masked = real & (torch.rand(window.shape, device=window.device, generator=generator) < self.mask_prob)
        last = torch.zeros_like(masked)
        last[:, -1] = True
        if self.last_prob > 0:
            only_last = torch.rand((window.shape[0], 1), device=window.device, generator=generator) < self.last_prob
            masked = torch.where(only_last, last & real, masked)
        none = ~masked.any(1, keepdim=True)  # (B, 1)
        masked |= none & last & real
        inp = torch.where(masked, torch.full_like(window, self.mask_id), window)
        return inp, torch.where(masked, window, torch.zeros_like(window))

    def train_inputs(self, batch: Batch, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        if batch.targets is None:
            raise RuntimeError("train_inputs needs a training batch (targets=None)")
        # the whole window: inputs plus the last next-item target (the newest item)
        window = torch.cat([batch.seq, batch.targets[:, -1:]], 1)  # (B, T + 1)
        inp, targets = self.cloze(window, generator)
        return self.encode(inp), targets

    def eval_input(self, seq: torch.Tensor) -> torch.Tensor:
        """(B, T) history -> (B, T + 1) history followed by [mask] (the last max_len items kept)."""
        mask = torch.full((seq.shape[0], 1), self.mask_id, dtype=seq.dtype, device=seq.device)
        return torch.cat([seq, mask], 1)[:, -self.max_len :]

    def query(self, batch: Batch) -> torch.Tensor:
        # last_only: the last block computes the [mask] position alone (profiled: the full last
        # block was ~1/4 of Beauty's full-ranking pass on CPU)
        return self.encode(self.eval_input(batch.seq), last_only=True)[:, -1]  # (B, D) output at [mask]
