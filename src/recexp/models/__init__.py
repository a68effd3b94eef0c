"""Models: one per file, all implementing :class:`recexp.models.base.SeqRecModel`."""
