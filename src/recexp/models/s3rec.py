"""S3Rec (Zhou et al., CIKM 2020): a SASRec encoder pre-trained with four self-supervised
objectives, then fine-tuned for next-item prediction.

The fine-tuned model *is* a SASRec (causal encoder, shared item embedding as the output layer),
so every loss, sampler and the evaluator apply unchanged. Pre-training adds:

* a ``[mask]`` token (id ``num_items + 1``) for masked items and masked segments;
* attribute embeddings (ids 1..A) when the dataset has side information;
* one linear head per objective: AAP and MAP score hidden states against attribute embeddings,
  MIP against item embeddings, SP a sequence context against a segment representation.

The heads only serve pre-training; fine-tuning ignores them (they get no gradient). During
pre-training the encoder is bidirectional (``encode(seq, causal=False)``): a masked position
may look at items after it, as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from recexp.models.sasrec import SASRec
from recexp.runtime.gemm import Linear


class S3Rec(SASRec):
    #: the paper fine-tunes with a pairwise loss (BCE with one sampled negative)
    default_loss = "bce"

    def __init__(self, num_items: int, num_users: int = 0, max_len: int = 50, hidden_size: int = 64,
                 num_blocks: int = 2, num_heads: int = 2, ffn_dim: int = 256, dropout: float = 0.5,
                 num_attributes: int = 0) -> None:
        # the [mask] token is part of the item table in both stages, so checkpoints line up
        super().__init__(num_items, num_users, max_len=max_len, hidden_size=hidden_size,
                         num_blocks=num_blocks, num_heads=num_heads, ffn_dim=ffn_dim, dropout=dropout,
                         causal=True, extra_tokens=1)
        self.num_attributes = num_attributes
        self.mip_head = Linear(hidden_size, hidden_size)
        self.sp_head = Linear(hidden_size, hidden_size)
        if num_attributes > 0:
            self.attr_emb = nn.Embedding(num_attributes + 1, hidden_size, padding_idx=0)
            self.aap_head = Linear(hidden_size, hidden_size)
            self.map_head = Linear(hidden_size, hidden_size)
        self.reset_parameters()

    @property
    def mask_id(self) -> int:
        return self.num_items + 1

    @staticmethod
    def encoder_keys(state: dict[str, torch.Tensor]) -> list[str]:
        """Names of the SASRec encoder tensors (what fine-tuning inherits) in a state dict."""
        heads = ("mip_head.", "sp_head.", "attr_emb.", "aap_head.", "map_head.")
        return [k for k in state if not k.startswith(heads)]

    def encode_bidirectional(self, seq: torch.Tensor) -> torch.Tensor:
        """(B, L) ids, ``[mask]`` allowed -> (B, L, D); every real position sees every other."""
        return self.encode(seq, causal=False)

    def _attr_logits(self, head: nn.Linear, h: torch.Tensor) -> torch.Tensor:
        if self.num_attributes <= 0:
            raise RuntimeError("S3Rec was built without attributes (num_attributes=0)")
        return head(h) @ self.attr_emb.weight.T  # (..., A+1); column 0 is padding

    def aap_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Associated attribute prediction: (..., D) states of visible items -> (..., A+1)."""
        return self._attr_logits(self.aap_head, h)

    def map_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Masked attribute prediction: (..., D) states at masked positions -> (..., A+1)."""
        return self._attr_logits(self.map_head, h)

    def mip_scores(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Masked item prediction: (..., D) states, (...) item ids -> (...) bilinear scores."""
        return (self.mip_head(h) * self.item_emb(items)).sum(-1)

    def sp_scores(self, context: torch.Tensor, segment: torch.Tensor) -> torch.Tensor:
        """Segment prediction: (B, D) context of the masked sequence, (B, D) segment -> (B,)."""
        return (self.sp_head(context) * segment).sum(-1)
