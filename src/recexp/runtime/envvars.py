"""Process settings read from the environment: one place that knows their names and values.

No torch import here: the CLI checks them (:func:`check`) before it dispatches a verb, so a bad
value is one line and exit 2 before any work, and ``recexp VERB --help`` stays instant.
"""

from __future__ import annotations

import os

from recexp.errors import ConfigError

#: name -> (allowed values, the default first)
SETTINGS: dict[str, tuple[str, ...]] = {
    "RECEXP_CPU_GEMM": ("auto", "blas"),  # recexp.runtime.gemm: fp32 products on CPU through oneDNN, or BLAS
    "RECEXP_MALLOC": ("keep", "default"),  # recexp.runtime.malloc: glibc keeps freed memory, or its defaults
    "RECEXP_CPU_DROPOUT": ("auto", "torch"),  # recexp.runtime.dropout: CPU masks from random words, or bernoulli_
    # recexp.runtime.distributed: "always" runs trainer.num_processes=1 through the distributed path too (a
    # one-process group: DDP, NCCL and the gathered evaluation checked on a one-GPU machine)
    "RECEXP_DDP": ("auto", "always"),
}


def setting(name: str) -> str:
    """The value of ``name`` (unset or empty: its default); anything else is a ConfigError."""
    allowed = SETTINGS[name]
    value = os.environ.get(name, "").strip().lower() or allowed[0]
    if value not in allowed:
        raise ConfigError(f"{name}={value!r}: expected {' or '.join(allowed)}")
    return value


def check() -> None:
    """Every setting is valid (raises the first ConfigError)."""
    for name in SETTINGS:
        setting(name)
