"""A model whose training step fails on rank 1 of a distributed job (``model._target_=...``):
how one rank's error reaches the user (tests/integration/test_ddp.py)."""

from __future__ import annotations

import os

from recexp.models.sasrec import SASRec


class FailsOnRankOne(SASRec):
    def train_inputs(self, batch, generator=None):  # noqa: ANN001, ANN201
        if os.environ.get("RANK") == "1":
            raise RuntimeError("boom on rank 1")
        return super().train_inputs(batch, generator)
