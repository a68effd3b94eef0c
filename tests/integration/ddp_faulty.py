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


class InterruptedOnce(SASRec):
    """Rank 0 is interrupted (as by Ctrl-C) at its ``$RECEXP_TEST_INTERRUPT_AT``-th training step,
    once: the marker file ``$RECEXP_TEST_INTERRUPT_MARK`` says it happened."""

    calls = 0

    def train_inputs(self, batch, generator=None):  # noqa: ANN001, ANN201
        mark = os.environ.get("RECEXP_TEST_INTERRUPT_MARK", "")
        if os.environ.get("RANK") == "0" and mark and not os.path.exists(mark):
            InterruptedOnce.calls += 1
            if InterruptedOnce.calls == int(os.environ.get("RECEXP_TEST_INTERRUPT_AT", "0")):
                open(mark, "w").close()  # noqa: SIM115
                raise KeyboardInterrupt
        return super().train_inputs(batch, generator)
