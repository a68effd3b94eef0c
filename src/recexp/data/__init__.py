"""Data: readers, download, synthetic generator, splits and batches."""

from recexp.data.seqs import EvalSet, Seqs, SplitData

__all__ = ["EvalSet", "Seqs", "SplitData"]
