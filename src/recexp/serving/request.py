"""The schema of one request row of a served recexp model (``mlflow models serve``,
``mlflow.pyfunc``): typed strictly, so a bad row is refused in one line naming the row, the field
and the value, never read as something else (``keep_history: "maybe"`` is not false, ``k: 2.7``
is not 2, ``k: 0`` is not the default).

    user          a raw user id the model knows (string or integer); their latest history is used
    history       raw item ids: a list, or one string separated by spaces (after the user's history)
    k             (int >= 1, at most the catalogue) recommendations per row; default 10
    keep_history  (bool) may recommend items already in the history; default false
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from recexp.errors import UserError, validation_error

DEFAULT_K = 10
FIELDS = ("user", "history", "k", "keep_history")


def _id(v: Any, what: str) -> str:
    """A raw id: a non-empty string, or an integer (JSON numbers; a float column of whole numbers
    when pandas filled a missing cell with NaN)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, str | int) or (isinstance(v, str) and not v.strip()):
        raise ValueError(f"expected a {what} id (a string or an integer)")
    return str(v).strip()


class Row(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    user: str | None = None
    history: list[str] | None = None
    k: int = Field(DEFAULT_K, ge=1)
    keep_history: bool = False

    @field_validator("user", mode="before")
    @classmethod
    def _user(cls, v: Any) -> str | None:
        return None if v is None else _id(v, "user")

    @field_validator("history", mode="before")
    @classmethod
    def _history(cls, v: Any) -> list[str] | None:
        if v is None:
            return None
        if isinstance(v, str):
            return v.replace(",", " ").split()
        if not isinstance(v, list | tuple):
            raise ValueError("expected a list of item ids, or one string of ids separated by spaces")
        return [_id(x, "item") for x in v]

    @field_validator("k", mode="before")
    @classmethod
    def _k(cls, v: Any) -> Any:
        # whole-number floats only: pandas turns a column of ints with a gap into floats
        return int(v) if isinstance(v, float) and v.is_integer() else v


def plain(v: Any) -> Any:
    """A cell as plain Python: numpy scalars and arrays unwrapped, a missing cell (NaN, NA) None."""
    if isinstance(v, np.ndarray):
        return [plain(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def parse_row(values: dict[str, Any], where: str, error: type[UserError] = UserError) -> Row:
    """One request row (missing cells left out, so they take their defaults) as a :class:`Row`."""
    given = {k: p for k, v in values.items() if (p := plain(v)) is not None}
    try:
        return Row.model_validate(given)
    except ValidationError as exc:
        raise validation_error(where, exc, error) from None
