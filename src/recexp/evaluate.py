"""``recexp evaluate``'s job: evaluate a job's best-validation checkpoint (``best.pt``) once on
its validation and test sets, with the job's own config. For a run stopped early (Ctrl-C, a time
budget): the checkpoint was still selected on validation only."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from recexp.errors import ConfigError
from recexp.tracking.tracker import Tracker


def evaluate(job: Path, device_name: str = "auto", tracker: Tracker | None = None) -> dict[str, float]:
    """Metrics of ``job``'s ``best.pt``; also written to ``evaluate.json`` and
    ``per_user_test.parquet`` in ``job``. ``tracker``: where the run is recorded (default: nowhere)."""
    from recexp import parts
    from recexp.data.batches import EvalBatches
    from recexp.tracking.lifecycle import tracked_run
    from recexp.train import checkpoint

    cfg_path, ckpt_path = job / ".hydra" / "config.yaml", job / "best.pt"
    for p in (cfg_path, ckpt_path):
        if not p.is_file():
            raise ConfigError(f"{p}: not found (expected a recexp job directory)")
    cfg = OmegaConf.load(cfg_path)
    with tracked_run(tracker or Tracker(), f"evaluate-{cfg.dataset.name}-s{cfg.seed}",
                     OmegaConf.to_container(cfg, resolve=True), {"recexp.role": "evaluate", "recexp.job": str(job)}):
        p = parts.build(cfg, device=device_name, training=False)
        model, data, evaluator = p.model, p.data, p.evaluator
        state = checkpoint.load(ckpt_path, map_location=p.device)
        model.fit(data)  # count-based models; a no-op for gradient models
        model.load_state_dict(state["model"])
        L = int(cfg.max_len)
        valid, _ = evaluator.evaluate(model, EvalBatches(data.valid, L, p.device))
        test, per_user = evaluator.evaluate(model, EvalBatches(data.test, L, p.device), per_user=True)
        out = {"best_epoch": float(state.get("epoch", 0))} | {f"valid/{k}": v for k, v in valid.items()} | {
            f"test/{k}": v for k, v in test.items()}
        (job / "evaluate.json").write_text(json.dumps(out, indent=2))
        per_user.to_parquet(job / "per_user_test.parquet", index=False)
    return out
