"""recexp: config-driven experiments for sequential recommendation.

``recexp.Dataset.from_pandas(...)``, ``recexp.train(...)``: see :mod:`recexp.api`. They are
imported on first use, so ``import recexp`` (and ``recexp --help``) stays instant.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Dataset", "TrainResult", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from recexp import api

        return getattr(api, name)
    raise AttributeError(f"module 'recexp' has no attribute {name!r}")
