"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over the item sequence.

Item embedding shared between input and output, learned positions, pre-LayerNorm blocks,
PyTorch SDPA attention. ``block: ligr`` swaps each block for a LiGR layer (Gupta et al. 2025,
"From Features to Transformers", LinkedIn): pre-LN with a sigmoid gate on each residual branch
and a SwiGLU feed-forward; with sampled softmax it is the eSASRec recipe (Tikhonov et al.,
RecSys 2025). Padding (id 0, left side) is masked as keys; every position may attend
to itself so fully padded rows stay finite.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from recexp.data.batches import Batch
from recexp.errors import ConfigError
from recexp.models.base import SeqRecModel
from recexp.runtime.dropout import Dropout, attention
from recexp.runtime.gemm import Linear, linear


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = Linear(dim, 3 * dim)
        self.out = Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """``last_only``: queries for the last position only -> (B, 1, D); keys still all L."""
        B, L, D = x.shape
        if last_only:  # the query projection for the last position alone: a third less of the qkv matmul
            w, b = self.qkv.weight, self.qkv.bias
            q = linear(x[:, -1:], w[:D], b[:D]).view(B, 1, self.heads, D // self.heads).transpose(1, 2)
            k, v = linear(x, w[D:], b[D:]).view(B, L, 2, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
            mask = mask[:, :, -1:]  # (B, 1, 1, L)
        else:
            q, k, v = self.qkv(x).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # (B, H, L, d)
        y = attention(q, k, v, mask, self.dropout, self.training)  # SDPA; CPU dropout from random words
        return self.out(y.transpose(1, 2).reshape(B, q.shape[2], D))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.ffn = nn.Sequential(Linear(dim, ffn_dim), nn.GELU(), Dropout(dropout), Linear(ffn_dim, dim))
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        y = self.drop(self.attn(self.ln1(x), mask, last_only))
        x = (x[:, -1:] if last_only else x) + y  # (B, 1 or L, D)
        return x + self.drop(self.ffn(self.ln2(x)))


class SwiGLU(nn.Module):
    """W2 (silu(W1 x) * W3 x), no biases (Shazeer 2020, "GLU Variants Improve Transformer")."""

    def __init__(self, dim: int, inner: int, dropout: float) -> None:
        super().__init__()
        self.w13 = Linear(dim, 2 * inner, bias=False)
        self.w2 = Linear(inner, dim, bias=False)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.w13(x).chunk(2, dim=-1)
        return self.w2(self.drop(F.silu(a) * b))


class LiGRBlock(nn.Module):
    """Pre-LN block whose two residual branches are scaled by sigmoid(W x + b) of the stream
    they are added to, with a SwiGLU feed-forward (the LiGR layer)."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.ffn = SwiGLU(dim, ffn_dim, dropout)
        self.gate1, self.gate2 = Linear(dim, dim), Linear(dim, dim)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        y = self.drop(self.attn(self.ln1(x), mask, last_only))
        x = x[:, -1:] if last_only else x
        x = x + torch.sigmoid(self.gate1(x)) * y
        return x + torch.sigmoid(self.gate2(x)) * self.drop(self.ffn(self.ln2(x)))


class PostLNBlock(Block):
    """Post-LayerNorm block (the original Transformer, and RecBole's SASRec): the same layers as
    :class:`Block`, with LayerNorm after each residual sum, LN(x + drop(attn(x))) then LN(x + drop(ffn(x)))."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        y = self.drop(self.attn(x, mask, last_only))
        x = self.ln1((x[:, -1:] if last_only else x) + y)
        return self.ln2(x + self.drop(self.ffn(x)))


BLOCKS = {"pre_ln": Block, "ligr": LiGRBlock, "post_ln": PostLNBlock}
INITS = ("xavier", "normal")
POSITIONS = ("from_end", "from_start")


def attention_mask(seq: torch.Tensor, causal: bool) -> torch.Tensor:
    """(B, 1, L, L) boolean, True = may attend: non-padding keys (causal: at or before the
    query), plus the query itself."""
    B, L = seq.shape
    allowed = (seq > 0).view(B, 1, 1, L).expand(B, 1, L, L)
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool, device=seq.device).tril()
    return allowed | torch.eye(L, dtype=torch.bool, device=seq.device)


class SASRec(SeqRecModel):
    last_only_training = True  # encode(last_only=True): the last block's query, attention and FFN for one position
    def __init__(self, num_items: int, num_users: int = 0, max_len: int = 50, hidden_size: int = 64,
                 num_blocks: int = 2, num_heads: int = 2, ffn_dim: int = 256, dropout: float = 0.2,
                 causal: bool = True, extra_tokens: int = 0, block: str = "pre_ln", init: str = "xavier",
                 emb_scale: bool = True, positions: str = "from_end") -> None:
        super().__init__(num_items, num_users)
        if block not in BLOCKS:
            raise ConfigError(f"model.block={block!r}: expected one of {', '.join(BLOCKS)}")
        if init not in INITS:
            raise ConfigError(f"model.init={init!r}: expected one of {', '.join(INITS)}")
        if positions not in POSITIONS:
            raise ConfigError(f"model.positions={positions!r}: expected one of {', '.join(POSITIONS)}")
        for key, value in (("max_len", max_len), ("hidden_size", hidden_size), ("num_blocks", num_blocks),
                           ("num_heads", num_heads), ("ffn_dim", ffn_dim)):
            if value < 1:
                raise ConfigError(f"model.{key}={value}: must be >= 1")
        if hidden_size % num_heads:
            raise ConfigError(f"model.hidden_size={hidden_size} is not divisible by model.num_heads={num_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout={dropout}: expected a probability in [0, 1)")
        self.max_len, self.causal = max_len, causal
        # extra_tokens: ids after num_items reserved for special tokens (BERT4Rec's [mask]).
        self.item_emb = nn.Embedding(num_items + 1 + extra_tokens, hidden_size, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len + 1, hidden_size)
        self.emb_drop = Dropout(dropout)
        self.blocks = nn.ModuleList(BLOCKS[block](hidden_size, num_heads, ffn_dim, dropout) for _ in range(num_blocks))
        # pre-LN blocks end with a LayerNorm; post-LN blocks end normalised, and RecBole's layout
        # normalises the embedding sum instead (LN(item + position), then dropout)
        self.ln = nn.LayerNorm(hidden_size)
        self.post_ln = block == "post_ln"
        self.scale = math.sqrt(hidden_size) if emb_scale else 1.0
        self.init, self.positions = init, positions
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``xavier``: Xavier-normal matrices (the default). ``normal``: N(0, 0.02) for every
        matrix and embedding, as BERT and RecBole's SASRec (``initializer_range`` 0.02)."""
        for name, p in self.named_parameters():
            if p.dim() > 1:
                if self.init == "xavier":
                    nn.init.xavier_normal_(p)
                else:
                    nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def encode(self, seq: torch.Tensor, last_only: bool = False, causal: bool | None = None) -> torch.Tensor:
        """(B, L) item ids -> (B, L, D) hidden states; ``last_only``: (B, 1, D), the last
        position's, with the last block computed for that position alone (evaluation).
        ``causal`` overrides the model's own setting for one call (S3Rec pre-trains
        bidirectionally, then fine-tunes causally)."""
        L = seq.shape[1]
        if L > self.max_len:
            seq = seq[:, -self.max_len :]
            L = self.max_len
        real = seq > 0
        if self.positions == "from_end":
            pos = torch.arange(self.max_len - L + 1, self.max_len + 1, device=seq.device)  # most recent = max_len
        else:  # RecBole's: the window's first item is position 1, whatever its length (left padding skipped)
            n = real.sum(1, keepdim=True)  # (B, 1)
            pos = (torch.arange(1, L + 1, device=seq.device) - (L - n)).clamp(min=0)  # (B, L), padding -> 0
        x = self.item_emb(seq) * self.scale + self.pos_emb(pos)
        if self.post_ln:
            x = self.ln(x)
        x = self.emb_drop(x) * real.unsqueeze(-1)
        causal = self.causal if causal is None else causal
        mask = attention_mask(seq, causal)
        for i, block in enumerate(self.blocks):
            # the last block's output at the last position needs only that query (keys and values
            # still span every position), causal or not
            x = block(x, mask, last_only and i == len(self.blocks) - 1)
        x = x[:, -1:] if last_only else x
        return x if self.post_ln else self.ln(x)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.encode(batch.seq)

    def query(self, batch: Batch) -> torch.Tensor:
        return self.encode(batch.seq, last_only=True)[:, -1]  # (B, D)

    def item_embeddings(self) -> torch.Tensor:
        return self.item_emb.weight[: self.num_items + 1]
