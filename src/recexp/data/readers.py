"""Readers for the interaction file formats recexp understands.

Every reader returns a DataFrame with columns ``user``, ``item``, ``timestamp`` in file order
(a later stable sort by timestamp keeps file order for ties). Malformed input raises
:class:`DataError` naming the file and line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from recexp.errors import DataError

COLUMNS = ["user", "item", "timestamp"]


def _require(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return path


def _parse_error_line(exc: Exception) -> str:
    m = re.search(r"line (\d+)", str(exc))
    return m.group(1) if m else "?"


def read_seqtxt(path: str | Path) -> pd.DataFrame:
    """``user item item ...`` per line (S3Rec files). Timestamps are positions in the line."""
    path = _require(path)
    users: list[str] = []
    lengths: list[int] = []
    items: list[np.ndarray] = []
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise DataError(f"{path}:{lineno}: expected 'user item [item ...]', got {line.strip()[:60]!r}")
            try:
                seq = np.array(parts[1:], dtype=np.int64)
            except ValueError:
                raise DataError(
                    f"{path}:{lineno}: expected integer item ids, got {line.strip()[:60]!r}"
                ) from None
            users.append(parts[0])
            lengths.append(len(seq))
            items.append(seq)
    if not users:
        raise DataError(f"{path}: no interactions found")
    lens = np.asarray(lengths)
    starts = np.repeat(np.cumsum(lens) - lens, lens)
    pos = np.arange(lens.sum()) - starts
    return pd.DataFrame(
        {
            "user": np.repeat(np.asarray(users, dtype=object), lens),
            "item": np.concatenate(items),
            "timestamp": pos.astype(np.float64),
        }
    )


def _read_table(path: Path, *, sep: str, names: list[str] | None, header: int | None,
                expect: int) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, sep=sep, header=header, names=names, engine="c" if len(sep) == 1 else "python",
                         dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}:{_parse_error_line(exc)}: expected {expect} fields separated by {sep!r}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    if df.shape[1] < expect:
        raise DataError(f"{path}:1: expected {expect} fields separated by {sep!r}, found {df.shape[1]}")
    return df


def _to_frame(path: Path, df: pd.DataFrame, user: str, item: str, ts: str | None,
              first_data_line: int) -> pd.DataFrame:
    out = pd.DataFrame({"user": df[user].to_numpy(), "item": df[item].to_numpy()})
    if ts is None:
        out["timestamp"] = np.arange(len(df), dtype=np.float64)
    else:
        t = pd.to_numeric(df[ts], errors="coerce")
        bad = np.flatnonzero(t.isna().to_numpy())
        if len(bad):
            raise DataError(
                f"{path}:{bad[0] + first_data_line}: expected a numeric timestamp, got {df[ts].iloc[bad[0]]!r}"
            )
        out["timestamp"] = t.to_numpy(dtype=np.float64)
    empty = np.flatnonzero((out["user"] == "").to_numpy() | (out["item"] == "").to_numpy())
    if len(empty):
        raise DataError(f"{path}:{empty[0] + first_data_line}: empty user or item id")
    return out


def read_atomic(path: str | Path) -> pd.DataFrame:
    """RecBole atomic ``.inter`` file: tab-separated, typed header ``user_id:token ...``."""
    path = _require(path)
    with path.open("r", encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
    names = [h.split(":")[0] for h in header]
    for need in ("user_id", "item_id"):
        if need not in names:
            raise DataError(f"{path}:1: header must contain '{need}:token', got {header}")
    df = _read_table(path, sep="\t", names=names, header=0, expect=len(names))
    ts = "timestamp" if "timestamp" in names else None
    return _to_frame(path, df, "user_id", "item_id", ts, first_data_line=2)


def read_ml_dat(path: str | Path) -> pd.DataFrame:
    """MovieLens 1M/10M ``ratings.dat``: ``user::item::rating::timestamp``."""
    path = _require(path)
    df = _read_table(path, sep="::", names=["u", "i", "r", "t"], header=None, expect=4)
    return _to_frame(path, df, "u", "i", "t", first_data_line=1)


def read_ml_udata(path: str | Path) -> pd.DataFrame:
    """MovieLens 100K ``u.data``: tab-separated ``user item rating timestamp``, no header."""
    path = _require(path)
    df = _read_table(path, sep="\t", names=["u", "i", "r", "t"], header=None, expect=4)
    return _to_frame(path, df, "u", "i", "t", first_data_line=1)


def read_ml_csv(path: str | Path) -> pd.DataFrame:
    """MovieLens ``ratings.csv``: header ``userId,movieId,rating,timestamp``."""
    path = _require(path)
    df = _read_table(path, sep=",", names=None, header=0, expect=4)
    for need in ("userId", "movieId", "timestamp"):
        if need not in df.columns:
            raise DataError(f"{path}:1: header must contain '{need}', got {list(df.columns)}")
    return _to_frame(path, df, "userId", "movieId", "timestamp", first_data_line=2)


def read_csv_generic(path: str | Path, sep: str = ",", user_col: str = "user_id",
                     item_col: str = "item_id", time_col: str | None = "timestamp") -> pd.DataFrame:
    """Any delimited file with a header naming the user, item and (optional) time columns."""
    path = _require(path)
    df = _read_table(path, sep=sep, names=None, header=0, expect=2)
    for need in [user_col, item_col] + ([time_col] if time_col else []):
        if need not in df.columns:
            raise DataError(f"{path}:1: header has no column '{need}' (columns: {list(df.columns)})")
    return _to_frame(path, df, user_col, item_col, time_col, first_data_line=2)


READERS = {
    "seqtxt": read_seqtxt,
    "atomic": read_atomic,
    "ml_dat": read_ml_dat,
    "ml_udata": read_ml_udata,
    "ml_csv": read_ml_csv,
    "csv": read_csv_generic,
}


def read_item2attributes(path: str | Path) -> dict[str, list[int]]:
    """S3Rec ``*_item2attributes.json``: ``{"item id": [attribute ids]}``."""
    path = _require(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); convert the file to UTF-8") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object mapping item id -> [attribute ids]")
    try:
        return {str(k): [int(a) for a in v] for k, v in raw.items()}
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{path}: expected a JSON object mapping item id -> [integer attribute ids]") from None


def read_atomic_item_tokens(path: str | Path, field: str = "class") -> dict[str, list[str]]:
    """Token-sequence attributes (e.g. MovieLens genres in ``class``) from an atomic ``.item``."""
    path = _require(path)
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); convert the file to UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: cannot be parsed ({str(exc).splitlines()[0][:200]})") from None
    df.columns = [c.split(":")[0] for c in df.columns]
    if field not in df.columns or "item_id" not in df.columns:
        raise DataError(f"{path}:1: header must contain 'item_id' and '{field}'")
    return {i: v.split() for i, v in zip(df["item_id"], df[field], strict=True)}
