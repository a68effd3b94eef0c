"""The S3Rec pre-training loop: batches of training-split sequences, the four objectives, AdamW.

Only the training part of the split is used (validation and test items are never seen), as in
the paper, whose pre-training reads each user's sequence without its last two items.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import torch
from rich.console import Console

from recexp.data.batches import DeviceSeqs, batch_plan, length_buckets
from recexp.data.seqs import SplitData
from recexp.errors import ConfigError, NonFiniteLoss
from recexp.models.s3rec import S3Rec
from recexp.training.pretrain.objectives import OBJECTIVES, s3rec_losses

EpochCallback = Callable[[int, dict[str, float]], None]


class S3RecPretrainer:
    def __init__(self, epochs: int = 10, batch_size: int = 256, lr: float = 1e-3, weight_decay: float = 0.0,
                 grad_clip: float | None = 5.0, mask_p: float = 0.2, mask_last: bool = True,
                 aap_weight: float = 0.2, mip_weight: float = 1.0, map_weight: float = 1.0,
                 sp_weight: float = 0.5, drop: str = "none", samples: str = "prefix",
                 finetune: bool = False, progress: bool = True) -> None:
        if not 0.0 <= mask_p < 1.0:
            raise ConfigError(f"pretrain.mask_p={mask_p}: expected a probability in [0, 1)")
        if samples not in ("prefix", "all_prefixes"):
            raise ConfigError(f"pretrain.samples={samples!r}: expected prefix or all_prefixes")
        dropped = [] if drop in ("none", "", None) else str(drop).split("+")
        bad = [d for d in dropped if d not in OBJECTIVES]
        if bad:
            raise ConfigError(f"pretrain.drop={drop!r}: unknown objective {bad[0]!r} "
                              f"(expected none or names from {', '.join(OBJECTIVES)} joined by '+')")
        raw = {"aap": aap_weight, "mip": mip_weight, "map": map_weight, "sp": sp_weight}
        neg = [k for k, v in raw.items() if v < 0]
        if neg:
            raise ConfigError(f"pretrain.{neg[0]}_weight={raw[neg[0]]}: weights must be >= 0")
        self.weights = {k: 0.0 if k in dropped else float(v) for k, v in raw.items()}
        if not any(self.weights.values()):
            raise ConfigError("pretrain: every objective weight is 0 (pretrain.drop / *_weight): nothing to learn")
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.weight_decay, self.grad_clip, self.mask_p = weight_decay, grad_clip, mask_p
        self.mask_last, self.samples, self.finetune, self.progress = mask_last, samples, finetune, progress
        self.console = Console(stderr=True)

    @property
    def needs_attributes(self) -> bool:
        return self.weights["aap"] > 0 or self.weights["map"] > 0

    def batches(self, seqs: DeviceSeqs, max_len: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """(B, W) left-padded samples, W <= max_len trimmed to the batch's longest.

        A sample is a prefix of a user's last ``max_len`` training items (the paper's samples):
        ``prefix`` draws one random prefix per user per epoch, ``all_prefixes`` takes every one
        (the paper's epoch; ~avg-length times more steps).
        """
        dev = seqs.device
        lens = (seqs.offsets[1:] - seqs.offsets[:-1]).clamp(max=max_len)  # (S,) window sizes
        if self.samples == "all_prefixes":
            rows = torch.repeat_interleave(torch.arange(len(lens), device=dev), lens)
            shift = torch.arange(len(rows), device=dev) - torch.repeat_interleave(torch.cumsum(lens, 0) - lens, lens)
        else:
            rows = torch.arange(len(lens), device=dev)[lens > 0]
            u = torch.rand(len(rows), generator=generator).to(dev)
            shift = (u * lens[rows]).floor().long()  # 0..len-1 items cut from the end
        width = lens[rows] - shift  # (M,) items in each sample
        # the training windows' bucketing: similar lengths share a batch (little padding)
        order, starts = length_buckets(width, self.batch_size, generator)
        for s, (w, _) in zip(starts.tolist(), batch_plan(width, order, starts, self.batch_size), strict=True):
            idx = order[s : s + self.batch_size]
            seq, _ = seqs.last(rows[idx], int(w), shift[idx])
            yield seq

    def fit(self, model: S3Rec, data: SplitData, attributes: torch.Tensor | None, max_len: int,
            device: torch.device, *, seed: int = 0, on_epoch: EpochCallback | None = None
            ) -> list[dict[str, float]]:
        if self.needs_attributes and attributes is None:
            raise ConfigError(f"dataset {data.name!r} has no item attributes (no dataset.attributes or "
                              "dataset.item_file): set pretrain.drop=aap+map (MIP and SP still run)")
        seqs = DeviceSeqs(data.train, device)
        pool = seqs.items  # every training item in order: the source of negative segments
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(seed)
        dev_gen = torch.Generator(device=device).manual_seed(seed + 1)
        history: list[dict[str, float]] = []
        for epoch in range(1, self.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            sums = {k: torch.zeros((), device=device) for k in (*OBJECTIVES, "total")}
            steps = 0
            for seq in self.batches(seqs, max_len, gen):
                losses = s3rec_losses(model, seq, self.weights, attributes=attributes, pool=pool,
                                      mask_p=self.mask_p, generator=dev_gen, mask_last=self.mask_last)
                opt.zero_grad(set_to_none=True)
                losses["total"].backward()
                if self.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
                opt.step()
                for k, v in losses.items():
                    sums[k] += v.detach()
                steps += 1
            m = {f"pretrain/{k}": float(v) / max(steps, 1) for k, v in sums.items()
                 if k == "total" or self.weights[k] > 0}  # one host sync per epoch
            if not math.isfinite(m["pretrain/total"]):
                raise NonFiniteLoss(f"pre-training loss became {m['pretrain/total']} at epoch {epoch} "
                                    f"(lower pretrain.lr={self.lr})")
            m["pretrain/epoch_s"] = time.perf_counter() - t0
            history.append(m)
            if self.progress:
                parts = "  ".join(f"{k.split('/')[1]} {v:.4f}" for k, v in m.items() if k != "pretrain/epoch_s")
                self.console.print(f"pretrain epoch {epoch:>3}  {parts}  {m['pretrain/epoch_s']:.1f}s")
            if on_epoch:
                on_epoch(epoch, m)
        return history
