"""Item side information (attributes) as a dense multi-hot table aligned with the remapped ids.

Two sources, named in the dataset config:

* ``attributes:`` an S3Rec ``*_item2attributes.json`` (``{"raw item id": [attribute ids]}``);
* ``item_file:`` a RecBole atomic ``.item`` whose ``class`` column holds tokens (MovieLens genres).

Raw item ids are mapped through ``SplitData.item_raw_ids`` (raw id of item ``i+1``), so the table
follows whatever filtering and remapping ``prepare`` applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recexp.data.readers import read_atomic_item_tokens, read_item2attributes
from recexp.errors import DataError


@dataclass
class ItemAttributes:
    """``table[i, a]`` is True when item ``i`` (1..N, row 0 = padding) has attribute ``a``
    (1..A, column 0 = padding, never set)."""

    table: np.ndarray  # (N+1, A+1) bool
    source: str

    @property
    def num_attributes(self) -> int:
        return self.table.shape[1] - 1

    def coverage(self) -> float:
        """Share of items with at least one attribute."""
        return float(self.table[1:].any(1).mean()) if len(self.table) > 1 else 0.0

    def to_tensor(self, device: torch.device, extra_rows: int = 0) -> torch.Tensor:
        """(N+1+extra_rows, A+1) bool on ``device``; extra rows (special tokens) have no attribute."""
        t = torch.as_tensor(self.table, device=device)
        if extra_rows:
            t = torch.cat([t, torch.zeros(extra_rows, t.shape[1], dtype=torch.bool, device=device)])
        return t


def _table(item_raw_ids: np.ndarray, raw: dict[str, list[Any]], codes: dict[Any, int]) -> np.ndarray:
    index = {str(r): i + 1 for i, r in enumerate(item_raw_ids)}
    rows: list[int] = []
    cols: list[int] = []
    for key, attrs in raw.items():
        i = index.get(str(key))
        if i is None:  # an item filtered out of the interactions
            continue
        for a in attrs:
            rows.append(i)
            cols.append(codes[a])
    table = np.zeros((len(item_raw_ids) + 1, max(codes.values(), default=0) + 1), dtype=bool)
    table[np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)] = True
    return table


def load_item_attributes(ds: dict[str, Any], data_dir: Path, item_raw_ids: np.ndarray | None
                         ) -> ItemAttributes | None:
    """The dataset's attribute table, or ``None`` when its config names no attribute source."""
    if item_raw_ids is None:
        raise DataError(f"dataset {ds.get('name')!r}: raw item ids unavailable; cannot align attributes")
    if ds.get("attributes"):
        path = data_dir / str(ds["attributes"])
        raw = read_item2attributes(path)
        ids = sorted({a for v in raw.values() for a in v})
        if ids and ids[0] < 1:
            raise DataError(f"{path}: attribute ids must be >= 1 (0 is padding), found {ids[0]}")
        # keep the file's integer ids (S3Rec numbering), so checkpoints line up with the paper's
        return ItemAttributes(_table(item_raw_ids, raw, {a: a for a in ids}), str(path))
    if ds.get("item_file"):
        path = data_dir / str(ds["item_file"])
        field = str(ds.get("item_attribute_field", "class"))
        tokens = read_atomic_item_tokens(path, field)
        vocab = sorted({t for v in tokens.values() for t in v})
        return ItemAttributes(_table(item_raw_ids, tokens, {t: j + 1 for j, t in enumerate(vocab)}), str(path))
    return None
