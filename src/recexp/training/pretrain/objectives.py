"""S3Rec's four self-supervised objectives on one batch of sequences.

* AAP (associated attribute prediction): each *visible* item's hidden state predicts that item's
  attributes (multi-label BCE over all attributes).
* MIP (masked item prediction): a masked position's state scores the hidden item above a random
  item not in the sequence (pairwise: -log sigmoid(s+ - s-)).
* MAP (masked attribute prediction): a masked position's state predicts the hidden item's
  attributes (multi-label BCE).
* SP (segment prediction): the state at the last position of the sequence with a segment masked
  scores the segment's own representation above a random segment of the same length.

Each loss is summed over its positions (and attributes) and divided by the batch size: the paper
sums, so its objective weights (AAP 0.2, MIP 1, MAP 1, SP 0.5) keep their relative scale, while
the division keeps the learning rate independent of the batch size. The paper passes sigmoid
scores through another sigmoid before the pairwise BCE; we use the plain pairwise form on raw
scores (same optimum, no vanishing gradient).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recexp.models.s3rec import S3Rec
from recexp.training.pretrain.masking import mask_items, segments

OBJECTIVES = ("aap", "mip", "map", "sp")


def attribute_bce(logits: torch.Tensor, targets: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Summed multi-label BCE. ``logits`` (B, L, A+1), ``targets`` (B, L, A+1) bool, ``where``
    (B, L) bool selects positions; attribute column 0 (padding) never counts."""
    bce = F.binary_cross_entropy_with_logits(logits[..., 1:], targets[..., 1:].to(logits.dtype),
                                             reduction="none").sum(-1)  # (B, L)
    return (bce * where).sum()


def s3rec_losses(model: S3Rec, seq: torch.Tensor, weights: dict[str, float], *, attributes: torch.Tensor | None,
                 pool: torch.Tensor, mask_p: float, generator: torch.Generator | None,
                 mask_last: bool = True) -> dict[str, torch.Tensor]:
    """The objectives with a non-zero weight, each a scalar, plus ``total`` (their weighted sum).

    ``seq`` (B, L) left-padded training items; ``attributes`` (N+2, A+1) bool item->attribute
    table (row 0 padding, row N+1 the [mask] token) or None; ``pool`` (P,) all training items in
    order, where negative segments come from.
    """
    B = seq.shape[0]
    active = [o for o in OBJECTIVES if weights.get(o, 0.0) > 0]
    if any(o in active for o in ("aap", "map")) and attributes is None:
        raise ValueError("AAP/MAP need an item attribute table")
    m = mask_items(seq, mask_p, model.mask_id, model.num_items, generator, mask_last)
    inputs = [m.inputs]
    if "sp" in active:
        s = segments(seq, pool, model.mask_id, generator)
        inputs += [s.context, s.positive, s.negative]
    # one encoder pass over every view: (V*B, L, D) -> V views of (B, L, D)
    views = model.encode_bidirectional(torch.cat(inputs)).split(B)
    h = views[0]  # (B, L, D) states of the masked-item view
    out: dict[str, torch.Tensor] = {}
    if "aap" in active or "map" in active:
        attrs = attributes[seq]  # (B, L, A+1) true attributes of the original items
    if "aap" in active:
        visible = (seq > 0) & ~m.masked
        out["aap"] = attribute_bce(model.aap_logits(h), attrs, visible) / B
    if "mip" in active:
        diff = model.mip_scores(h, seq) - model.mip_scores(h, m.negatives)  # (B, L)
        out["mip"] = (F.softplus(-diff) * m.masked).sum() / B
    if "map" in active:
        out["map"] = attribute_bce(model.map_logits(h), attrs, m.masked) / B
    if "sp" in active:
        ctx, pos, neg = (v[:, -1] for v in views[1:])  # (B, D): the last position is always real
        diff = model.sp_scores(ctx, pos) - model.sp_scores(ctx, neg)  # (B,)
        out["sp"] = (F.softplus(-diff) * s.valid).sum() / B
    out["total"] = sum((weights[o] * out[o] for o in active), torch.zeros((), device=seq.device))
    return out
