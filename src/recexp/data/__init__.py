"""Data: readers, download, synthetic generator, splits and batches."""

from recexp.data.seqs import EvalSet, Seqs, SplitData

# trainer.window_mode's choices, here (torch-free) so config/schema.py checks them before a run opens
WINDOW_MODES = ("all", "last", "prefixes", "prefixes_empty")
PREFIXES = ("prefixes", "prefixes_empty")  # one window per target, its last position trained

__all__ = ["PREFIXES", "WINDOW_MODES", "EvalSet", "Seqs", "SplitData"]
