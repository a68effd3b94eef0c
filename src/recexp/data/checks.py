"""What a reader can meet in a file the user chose, turned into one line naming the file: bytes
that are not UTF-8, ids beyond 64 bits, no permission, reader options the reader does not take;
and the rows no split should see: exact duplicates and non-finite timestamps."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recexp.errors import ConfigError, DataError

log = logging.getLogger("recexp")


def read_checked(reader: Callable[..., pd.DataFrame], path: Path, kwargs: dict[str, Any]) -> pd.DataFrame:
    params = inspect.signature(reader).parameters
    unknown = sorted(set(kwargs) - set(params) - {"path"})
    if unknown:
        known = [p for p in params if p != "path"]
        raise ConfigError(f"dataset.reader_args: unknown key {unknown[0]!r} for this format "
                          f"(accepted: {', '.join(known) or 'none'})")
    sep = kwargs.get("sep")
    if sep is not None:
        if not isinstance(sep, str) or not sep:
            raise ConfigError(f"dataset.reader_args.sep={sep!r}: expected a non-empty string")
        if len(sep) > 1:
            try:
                re.compile(sep)
            except re.error as exc:
                raise ConfigError(f"dataset.reader_args.sep={sep!r}: not a valid regular expression ({exc})") from None
    try:
        return reader(path, **kwargs)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r}); "
                        "convert the file to UTF-8") from None
    except OverflowError:
        raise DataError(f"{path}: an id does not fit in a 64-bit integer; use shorter ids") from None
    except (PermissionError, IsADirectoryError) as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror})") from None
    except (re.error, ValueError) as exc:  # pandas' own complaints about a separator or a row
        if isinstance(exc, DataError | ConfigError):
            raise
        raise DataError(f"{path}: cannot be parsed ({str(exc).splitlines()[0][:200]})") from None


def clean_rows(df: pd.DataFrame, name: str, policy: str) -> pd.DataFrame:
    """Drop (with one warning) or refuse (``dataset.bad_rows=error``) rows with a non-finite
    timestamp and exact duplicates of an earlier row (same user, item and timestamp). A duplicated
    target would otherwise sit in the masked history and score 0 whatever the model does."""
    ts = df["timestamp"].to_numpy(dtype=np.float64)
    bad_ts = ~np.isfinite(ts)
    dup = df.duplicated(["user", "item", "timestamp"], keep="first").to_numpy() & ~bad_ts
    n_ts, n_dup = int(bad_ts.sum()), int(dup.sum())
    if not n_ts and not n_dup:
        return df
    what = []
    if n_ts:
        what.append(f"{n_ts} rows with a non-finite timestamp (first: row {int(np.flatnonzero(bad_ts)[0]) + 1})")
    if n_dup:
        what.append(f"{n_dup} exact duplicate rows (first: row {int(np.flatnonzero(dup)[0]) + 1})")
    text = f"dataset {name!r}: {' and '.join(what)} of {len(df)}"
    if policy == "error":
        raise DataError(f"{text}; fix the file or set dataset.bad_rows=drop")
    log.warning("warning: %s dropped (dataset.bad_rows=drop; =error refuses the file)", text)
    out = df[~(bad_ts | dup)]
    if len(out) == 0:
        raise DataError(f"{text}: nothing left")
    return out.reset_index(drop=True)
