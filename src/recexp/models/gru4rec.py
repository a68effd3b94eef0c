"""GRU4Rec (Hidasi et al., ICLR 2016; Hidasi & Karatzoglou, CIKM 2018): a GRU over the item
sequence; the hidden state at step t, projected to the embedding size, is the query for item t+1.

Scores are dot products with the item embedding (shared between input and output, as in the
2018 paper's "constrained embedding" variant), so any loss and sampler of the project applies:
the paper's in-batch negatives and BPR-max / TOP1-max are the ``loss`` and ``sampler`` groups'
job, not the model's. ``embedding_size=0`` sizes the embedding like the hidden state (the 2018
paper's shared-embedding setting, its closest analogue of the one-hot input).
"""

from __future__ import annotations

import torch
from torch import nn

from recexp.data.batches import Batch
from recexp.errors import ConfigError
from recexp.models.base import SeqRecModel
from recexp.models.rnn import left_align, restore
from recexp.runtime.dropout import Dropout
from recexp.runtime.gemm import Linear


class GRU4Rec(SeqRecModel):
    # Full softmax CE: the strongest of the paper family's losses on these data sizes, and needs
    # no sampler; BPR-max with many in-batch/sampled negatives is a preset (loss=bpr_max).
    default_loss = "ce"

    def __init__(self, num_items: int, num_users: int = 0, embedding_size: int = 64, hidden_size: int = 100,
                 num_layers: int = 1, dropout_emb: float = 0.25, dropout_hidden: float = 0.0,
                 session_parallel: bool = False, bptt: int = 1) -> None:
        super().__init__(num_items, num_users)
        if hidden_size <= 0 or num_layers <= 0:
            raise ConfigError(f"model.hidden_size={hidden_size}, model.num_layers={num_layers}: both must be positive")
        if int(bptt) < 1:
            raise ConfigError(f"model.bptt={bptt}: expected at least 1 step")
        # the trainer reads these two: session-parallel lanes instead of windows (data/batches.py)
        self.session_parallel, self.bptt = bool(session_parallel), int(bptt)
        self._lanes: torch.Tensor | None = None  # (layers, B, H) hidden state carried between batches
        emb = embedding_size if embedding_size > 0 else hidden_size
        self.item_emb = nn.Embedding(num_items + 1, emb, padding_idx=0)
        self.emb_drop = Dropout(dropout_emb)
        self.gru = nn.GRU(emb, hidden_size, num_layers, batch_first=True,
                          dropout=dropout_hidden if num_layers > 1 else 0.0)
        self.out_drop = Dropout(dropout_hidden)
        self.proj = Linear(hidden_size, emb)  # hidden state -> item space
        nn.init.xavier_normal_(self.item_emb.weight)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def forward(self, batch: Batch) -> torch.Tensor:
        if batch.reset is not None:
            return self._forward_lanes(batch)
        seq, back = left_align(batch.seq)  # (B, L) right-padded
        h, _ = self.gru(self.emb_drop(self.item_emb(seq)))  # (B, L, H); step t saw items <= t only
        return restore(self.proj(self.out_drop(h)), back, batch.seq)  # (B, L, D) back to left padding

    def _forward_lanes(self, batch: Batch) -> torch.Tensor:
        """Session-parallel step(s): each lane continues from the hidden state the previous batch
        left (detached), zeroed where ``reset`` starts a new sequence. (B, k, D)."""
        B, k = batch.seq.shape
        h = self._lanes
        if h is None or h.shape[1] != B or h.device != batch.seq.device:
            h = torch.zeros(self.gru.num_layers, B, self.gru.hidden_size, device=batch.seq.device)
        h = h.detach()
        x = self.emb_drop(self.item_emb(batch.seq))  # (B, k, E)
        keep = (~batch.reset).to(x.dtype).T.unsqueeze(-1)  # (k, B, 1)
        outs = []
        for t in range(k):  # k = bptt steps (1 in the paper); the lanes are the batch dimension
            o, h = self.gru(x[:, t : t + 1], h * keep[t])
            outs.append(o)
        self._lanes = h.detach()
        out = torch.cat(outs, 1) if k > 1 else outs[0]  # (B, k, H)
        return self.proj(self.out_drop(out)) * (batch.seq > 0).unsqueeze(-1)

    def item_embeddings(self) -> torch.Tensor:
        return self.item_emb.weight
