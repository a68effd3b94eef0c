"""Load → order → filter → remap → split, cached on disk by a hash of the data config."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recexp.data import synthetic
from recexp.data.checks import clean_rows, read_checked
from recexp.data.download import ensure_file
from recexp.data.readers import READERS
from recexp.data.seqs import EvalSet, Seqs, SplitData
from recexp.errors import ConfigError, DataError

CACHE_VERSION = 2  # 2: raw user ids kept (per-user results and `recexp recommend` speak raw ids)


def default_data_dir() -> Path:
    return Path(os.environ.get("RECEXP_DATA_DIR", "data")).expanduser()


def source_file(ds: dict[str, Any], data_dir: Path) -> tuple[Path | None, str | None]:
    """The interaction file this dataset reads (fetched and SHA-256-checked), and its format."""
    fmt = ds.get("format")
    if fmt == "synthetic":
        return None, fmt
    if fmt not in READERS:
        raise ConfigError(f"dataset.format={fmt!r}: expected one of {sorted(READERS) + ['synthetic']}")
    if not ds.get("file"):
        raise ConfigError("dataset.file: a path to the interaction file is required")
    path, dl_fmt = ensure_file(data_dir, str(ds["file"]), ds.get("download"), ds.get("sha256"))
    return path, dl_fmt or fmt


def load_frame(ds: dict[str, Any], data_dir: Path, source: tuple[Path | None, str | None] | None = None
               ) -> pd.DataFrame:
    """Raw interactions ``user, item, timestamp`` for a dataset config."""
    path, fmt = source or source_file(ds, data_dir)
    if path is None:
        return synthetic.generate(**ds.get("generator", {}))
    return read_checked(READERS[fmt], path, dict(ds.get("reader_args") or {}))


def kcore(df: pd.DataFrame, min_user: int, min_item: int) -> pd.DataFrame:
    """Iteratively drop users/items with fewer interactions than the thresholds."""
    while min_user > 1 or min_item > 1:
        uc = df["user"].map(df["user"].value_counts())
        ic = df["item"].map(df["item"].value_counts())
        keep = (uc >= min_user) & (ic >= min_item)
        if keep.all():
            break
        df = df[keep.to_numpy()]
    return df


def _sorted_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Map raw ids to 1..K, ordered numerically when all ids are integers (keeps S3Rec ids)."""
    uniq = pd.unique(values)
    num = pd.to_numeric(pd.Series(uniq), errors="coerce")
    order = np.argsort(num.to_numpy(), kind="stable") if not num.isna().any() else np.argsort(uniq.astype(str), kind="stable")
    uniq = uniq[order]
    codes = pd.Index(uniq).get_indexer(values) + 1
    return codes.astype(np.int64), np.asarray(uniq).astype(str)


def build_seqs(df: pd.DataFrame) -> tuple[Seqs, np.ndarray, np.ndarray]:
    """Chronological per-user sequences (stable for ties: file order wins)."""
    users, user_raw = _sorted_codes(df["user"])
    items, item_raw = _sorted_codes(df["item"])
    ts = df["timestamp"].to_numpy(dtype=np.float64)
    order = np.lexsort((ts, users))  # stable: ties keep file order
    users, items, ts = users[order], items[order], ts[order]
    lengths = np.bincount(users)[1:]
    seqs = Seqs.from_lengths(np.arange(1, len(lengths) + 1), lengths, items, ts)
    return seqs, user_raw, item_raw


#: dataset keys read by the evaluator, not by the reader or the split
EVALUATION_KEYS = ("mask_history",)


def _cache_key(ds: dict[str, Any], split: dict[str, Any], path: Path | None) -> str:
    """The data config plus the identity of the file read (path, size, mtime): a split is never
    reused for another file, nor for the same file edited in place."""
    kept = {k: v for k, v in ds.items() if k not in EVALUATION_KEYS}  # they do not change the split
    stamp: dict[str, Any] = {"v": CACHE_VERSION, "dataset": kept, "split": split}
    if path is not None:
        st = path.stat()
        stamp["file"] = [str(path.resolve()), st.st_size, st.st_mtime_ns]
    blob = json.dumps(stamp, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def prepare(ds: dict[str, Any], split_cfg: dict[str, Any], splitter, data_dir: Path,
            cache_dir: Path | None) -> SplitData:
    """The split dataset for ``ds``; computed once per config and file, cached under ``cache_dir``."""
    source = source_file(ds, data_dir)
    key = _cache_key(ds, split_cfg, source[0])
    name = str(ds.get("name", "dataset"))
    cache = cache_dir / f"{name}-{key}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        return _load_cache(cache, name, key)
    df = load_frame(ds, data_dir, source)
    df = clean_rows(df, name, str(ds.get("bad_rows", "drop")))
    n_raw = len(df)
    df = kcore(df, int(ds.get("min_user_count", 0) or 0), int(ds.get("min_item_count", 0) or 0))
    if len(df) == 0:
        raise DataError(
            f"dataset {name!r}: empty after filtering ({n_raw} interactions read; "
            f"min_user_count={ds.get('min_user_count')}, min_item_count={ds.get('min_item_count')})"
        )
    seqs, user_raw, item_raw = build_seqs(df)
    data = splitter(seqs, num_users=len(user_raw), num_items=len(item_raw))
    data.name, data.fingerprint, data.item_raw_ids, data.user_raw_ids = name, key, item_raw, user_raw
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.stem}.{os.getpid()}.tmp.npz")
        try:
            np.savez(tmp, **data.train.to_dict("train"), **data.valid.to_dict("valid"),
                     **data.test.to_dict("test"), item_raw_ids=item_raw, user_raw_ids=user_raw,
                     meta=np.array([data.num_users, data.num_items]))
        except BaseException:  # a full disk mid-write: no orphan temp file
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(cache)  # atomic: parallel jobs never read a half-written cache
    return data


def _load_cache(path: Path, name: str, key: str) -> SplitData:
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    data = SplitData(Seqs.from_dict(d, "train"), EvalSet.from_dict(d, "valid"), EvalSet.from_dict(d, "test"),
                     int(d["meta"][0]), int(d["meta"][1]), name, key, d["item_raw_ids"], d["user_raw_ids"])
    return data
