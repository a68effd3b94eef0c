"""The loader module of recexp's MLflow models (``mlflow models serve``, ``mlflow.pyfunc.load_model``).

``predict`` takes a DataFrame with, per row, a ``history`` (raw item ids, a list or one string
separated by spaces) and/or a ``user`` (a raw user id the model knows: their latest history, then
``history`` if given), an optional ``k`` (default 10) and ``keep_history`` (default false), and
returns one row per recommendation: ``row`` (input row), ``user``, ``rank``, ``item``, ``score``.
Every row is checked first (:mod:`recexp.serving.request`); a bad request raises
:class:`RequestError`, which the scoring server answers with HTTP 400 and one line of JSON.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from recexp.errors import UserError
from recexp.serving.request import DEFAULT_K, FIELDS, Row, parse_row

COLUMNS = ["row", "user", "rank", "item", "score"]
__all__ = ["DEFAULT_K", "RecexpModel", "RequestError"]


class RequestError(MlflowException, UserError):
    """A request the model cannot answer: HTTP 400, ``{"error_code": "INVALID_PARAMETER_VALUE",
    "message": <one line>}``. MLflow's scoring server rewrites a predict() exception's message to
    ``Failed to predict data '<the whole input>'. Error: ...`` (mlflow/pyfunc/scoring_server,
    ``invocations``), which would echo the request back over many lines: the first message set is
    the one kept."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_message"):
            self._message = value


class RecexpModel:
    def __init__(self, recommender) -> None:  # noqa: ANN001 (a serving.recommend.Recommender)
        self.rec = recommender

    def rows(self, df: pd.DataFrame, params: dict[str, Any] | None) -> list[Row]:
        """Every row checked against the schema and the model (known user, known items, k within
        the catalogue) before any is scored."""
        if len(df) == 0:
            raise UserError("request: no rows (give at least one record with a 'user' or a 'history')")
        if not {"history", "user"} & set(df.columns):
            raise UserError(f"input needs a 'history' or a 'user' column (got {list(df.columns)})")
        unknown = sorted(str(c) for c in set(df.columns) - set(FIELDS))
        if unknown:
            raise UserError(f"request: unknown column(s) {', '.join(unknown)} (expected {', '.join(FIELDS)})")
        extra = sorted(set(params or {}) - {"k", "keep_history"})
        if extra:
            raise UserError(f"request params: unknown {', '.join(extra)} (expected k, keep_history)")
        defaults = parse_row(dict(params or {}), "request params")
        out = []
        for j, values in enumerate(df.to_dict("records")):
            row = parse_row({**defaults.model_dump(include=set(params or {})), **values}, f"row {j}")
            if row.user is None and not row.history:
                raise UserError(f"row {j}: needs a 'user' or a non-empty 'history'")
            if row.k > self.rec.model.num_items:
                raise UserError(f"row {j}: k={row.k}: more than the {self.rec.model.num_items} items this model knows")
            if row.user is not None:
                self.rec.users([row.user], f"row {j}: ")
            self.rec.items(row.history or [], f"row {j}: history")
            out.append(row)
        return out

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        try:
            df = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        except (ValueError, TypeError) as exc:  # a body pandas cannot make a table of
            raise RequestError(f"request: not a table of records ({str(exc).splitlines()[0][:200]})") from None
        try:
            out = []
            for j, r in enumerate(self.rows(df, params)):
                if r.user is not None:
                    top = self.rec.for_users([r.user], r.k, extra=r.history or [], keep_history=r.keep_history)
                else:
                    top = self.rec.for_histories([r.history], r.k, keep_history=r.keep_history, labels=[""])
                out.append(top.assign(row=j))
        except RequestError:
            raise
        except UserError as exc:
            raise RequestError(str(exc)) from None
        return pd.concat(out, ignore_index=True)[COLUMNS]


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> RecexpModel:
    from recexp.serving.bundle import load
    from recexp.serving.recommend import Recommender

    device = os.environ.get("RECEXP_SERVE_DEVICE", "cpu")
    return RecexpModel(Recommender(load(data_path, device)))
