"""``recexp results --targets FILE``: per dataset, the figures its best setting should reach.

    beauty:
      ndcg_10: 0.055        # (float in (0, 1]) test NDCG@10 to reach; optional
      hr_10: 0.095          # (float in (0, 1]) test HR@10 to reach; optional
      published: "..."      # (str) the strongest published figure, with its source
      models: {SASRec: "..."}   # (str -> str) the published figure beside each model's rows
      same_as: [beauty_sasrec]  # (list[str]) presets whose runs count for <dataset>_best

Read once through a strict schema: a malformed file is one line naming the file, the key and the
value, never a traceback from the table code that uses it.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from recexp.errors import UserError, validation_error

Fraction = Field(None, gt=0, le=1, allow_inf_nan=False)


class Target(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    ndcg_10: float | None = Fraction
    hr_10: float | None = Fraction
    published: str = ""
    models: dict[str, str] = {}
    same_as: list[str] = []


TARGETS = TypeAdapter(dict[str, Target], config=ConfigDict(strict=True))


def load_targets(path: Path) -> dict[str, dict]:
    """dataset -> {ndcg_10, hr_10, published, models, same_as} (keys left out when not given)."""
    where = f"--targets {path}"
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping of dataset -> {{ndcg_10, hr_10, published}}, "
                        f"got {type(data).__name__}")
    try:
        parsed = TARGETS.validate_python({str(k): v for k, v in data.items()})
    except ValidationError as exc:
        raise validation_error(where, exc, UserError) from None
    return {ds: t.model_dump(exclude_defaults=True) for ds, t in parsed.items()}
