"""The loader module of recexp's MLflow models (``mlflow models serve``, ``mlflow.pyfunc.load_model``).

``predict`` takes a DataFrame with, per row, a ``history`` (raw item ids, a list or one string
separated by spaces) and/or a ``user`` (a raw user id the model knows: their latest history, then
``history`` if given), an optional ``k`` (default 10) and ``keep_history`` (default false), and
returns one row per recommendation: ``row`` (input row), ``user``, ``rank``, ``item``, ``score``.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pandas as pd

from recexp.errors import UserError

DEFAULT_K = 10


def _cell(df: pd.DataFrame, col: str, j: int) -> Any:
    if col not in df.columns:
        return None
    v = df[col].iloc[j]
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def _items(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return v.split()
    return [str(x) for x in v]


class RecexpModel:
    def __init__(self, recommender) -> None:  # noqa: ANN001 (a serving.recommend.Recommender)
        self.rec = recommender

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        df = pd.DataFrame(model_input)
        if not {"history", "user"} & set(df.columns):
            raise UserError(f"input needs a 'history' or a 'user' column (got {list(df.columns)})")
        out = []
        for j in range(len(df)):
            k = int(_cell(df, "k", j) or (params or {}).get("k", DEFAULT_K))
            keep = str(_cell(df, "keep_history", j) or False).lower() in ("true", "1")
            user, hist = _cell(df, "user", j), _items(_cell(df, "history", j))
            if user is not None:
                top = self.rec.for_users([str(user)], k, extra=hist, keep_history=keep)
            else:
                top = self.rec.for_histories([hist], k, keep_history=keep, labels=[""])
            out.append(top.assign(row=j))
        cols = ["row", "user", "rank", "item", "score"]
        return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame({c: [] for c in cols})


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> RecexpModel:
    from recexp.serving.bundle import load
    from recexp.serving.recommend import Recommender

    device = os.environ.get("RECEXP_SERVE_DEVICE", "cpu")
    return RecexpModel(Recommender(load(data_path, device)))
