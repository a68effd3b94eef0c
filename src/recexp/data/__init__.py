"""Data: readers, download, synthetic generator, splits and batches."""

from recexp.data.seqs import EvalSet, Seqs, SplitData
from recexp.errors import ConfigError

# trainer.window_mode's choices, here (torch-free) so config/schema.py checks them before a run opens
WINDOW_MODES = ("all", "last", "prefixes", "prefixes_empty")
PREFIXES = ("prefixes", "prefixes_empty")  # one window per target, its last position trained


def check_window_mode(mode: object) -> None:
    """The one check of ``trainer.window_mode``: at composition, and again where windows are cut."""
    if mode not in WINDOW_MODES:
        raise ConfigError(f"trainer.window_mode={mode!r}: expected {', '.join(WINDOW_MODES)}")


__all__ = ["PREFIXES", "WINDOW_MODES", "EvalSet", "Seqs", "SplitData", "check_window_mode"]
