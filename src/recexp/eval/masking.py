"""The history-masking rule of every evaluator (``eval.mask_history``), and the repeat / explore
split of every metric.

A candidate set must never depend on the label. Two rules meet that, and each dataset config
states which one its published figures use (``dataset.mask_history``):

* ``all``: the user's whole history is masked; a target that repeats a history item is then a miss
  (the published code of S3Rec, BSARec, TV-Rec on the Amazon / Yelp / LastFM files);
* ``none``: nothing is masked; history items compete with the rest (RecBole's sequential full
  ranking; the right rule where users re-consume items).

The former default, ``except_target`` (mask the history *except the test item*), looked at the
answer: a repeated target competed only with never-seen items. It is refused in one line.
"""

from __future__ import annotations

import torch

from recexp.config.schema import MASK_RULES, check_mask_history

MODES = MASK_RULES


def mask_mode(value: object) -> str:
    """Normalise ``eval.mask_history`` (one line for a value that is not a rule)."""
    return check_mask_history(value)


class RepeatSplit:
    """Each metric over the examples whose target repeats an item of the user's history, and over
    the others (Li et al., SIGIR 2023, "Repetition and exploration in sequential recommendation"):
    ``repeat/<metric>``, ``explore/<metric>`` and ``repeat_share``. Sums stay on the device."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count: torch.Tensor | int = 0

    def add(self, values: dict[str, torch.Tensor], repeat: torch.Tensor) -> None:
        """``values``: per-example metrics (B,); ``repeat`` (B,) bool."""
        w = repeat.to(next(iter(values.values())).dtype) if values else repeat.float()
        for key, v in values.items():
            self.sums[key] = self.sums.get(key, 0) + (v * w).sum()
        self.count = self.count + repeat.sum()

    def means(self, totals: dict[str, torch.Tensor], n: int) -> dict[str, float]:
        """The split of ``totals`` (sums over all ``n`` examples); a side with no example is left out."""
        r = int(self.count)
        out = {"repeat_share": r / n if n else 0.0}
        for key, s in self.sums.items():
            if r:
                out[f"repeat/{key}"] = float(s) / r
            if n - r:
                out[f"explore/{key}"] = float(totals[key] - s) / (n - r)
        return out
