"""NARM (Li et al., CIKM 2017): Neural Attentive Recommendation Machine.

A GRU encodes the sequence. At step t the global encoder is the last hidden state h_t; the
local encoder attends over h_1..h_t with weights a_tj = v^T sigmoid(A1 h_t + A2 h_j); the two
are concatenated and a bilinear decoder B scores item i as emb_i^T B [c_g; c_l]. Every position
gets its own query (each prefix is a training example), so the attention is causal: j <= t.
:meth:`NARM.query` computes the last position's alone (evaluation, and training on prefix windows,
``trainer.window_mode=prefixes``): its attention is (B, L) where the causal pass's is (B, L, L, H).
"""

from __future__ import annotations

import torch
from torch import nn

from recexp.data.batches import Batch
from recexp.models.base import SeqRecModel
from recexp.models.rnn import left_align, restore
from recexp.runtime.dropout import Dropout
from recexp.runtime.gemm import Linear


class NARM(SeqRecModel):
    last_only_training = True  # prefix windows train through query(): one attention row per window

    def __init__(self, num_items: int, num_users: int = 0, embedding_size: int = 64, hidden_size: int = 100,
                 num_layers: int = 1, dropout_emb: float = 0.25, dropout_ct: float = 0.5) -> None:
        super().__init__(num_items, num_users)
        self.item_emb = nn.Embedding(num_items + 1, embedding_size, padding_idx=0)
        self.emb_drop = Dropout(dropout_emb)
        self.gru = nn.GRU(embedding_size, hidden_size, num_layers, batch_first=True)
        self.a1 = Linear(hidden_size, hidden_size, bias=False)  # applied to the query state h_t
        self.a2 = Linear(hidden_size, hidden_size, bias=False)  # applied to each h_j
        self.v = Linear(hidden_size, 1, bias=False)
        self.ct_drop = Dropout(dropout_ct)
        self.decoder = Linear(2 * hidden_size, embedding_size, bias=False)  # the bilinear B
        nn.init.xavier_normal_(self.item_emb.weight)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def forward(self, batch: Batch) -> torch.Tensor:
        seq, back = left_align(batch.seq)  # (B, L) right-padded
        L = seq.shape[1]
        h, _ = self.gru(self.emb_drop(self.item_emb(seq)))  # (B, L, H)
        # (B, t, j): query t attends to real keys j <= t
        e = self.v(torch.sigmoid(self.a1(h).unsqueeze(2) + self.a2(h).unsqueeze(1))).squeeze(-1)  # (B, L, L)
        keep = torch.ones(L, L, dtype=torch.bool, device=seq.device).tril() & (seq > 0).unsqueeze(1)
        c_local = (e * keep) @ h  # (B, L, H): NARM's weights are not normalised (no softmax)
        c = self.ct_drop(torch.cat([h, c_local], -1))  # (B, L, 2H)
        return restore(self.decoder(c), back, batch.seq)  # (B, L, D)

    def query(self, batch: Batch) -> torch.Tensor:
        """The last position's query alone, (B, D): equal to ``forward(batch)[:, -1]`` (without
        dropout) at 1/L of the attention's cost."""
        seq, _ = left_align(batch.seq)  # (B, L) right-padded: the GRU reads no padding first
        h, _ = self.gru(self.emb_drop(self.item_emb(seq)))  # (B, L, H)
        last = ((seq > 0).sum(1) - 1).clamp(min=0)  # (B,) the last real step
        ht = h[torch.arange(len(seq), device=seq.device), last]  # (B, H)
        e = self.v(torch.sigmoid(self.a1(ht).unsqueeze(1) + self.a2(h))).squeeze(-1)  # (B, L)
        c_local = ((e * (seq > 0)).unsqueeze(1) @ h).squeeze(1)  # (B, H), real keys only
        return self.decoder(self.ct_drop(torch.cat([ht, c_local], -1)))  # (B, D)

    def item_embeddings(self) -> torch.Tensor:
        return self.item_emb.weight
