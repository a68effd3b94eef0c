"""``recexp evaluate``'s job: evaluate a job's best-validation checkpoint (``best.pt``) once on
its validation and test sets, with the job's own config. For a run stopped early (Ctrl-C, a time
budget): the checkpoint was still selected on validation only. The figures are logged to the MLflow
run that wrote the job (:mod:`recexp.record.evaluated`)."""

from __future__ import annotations

import sys
from pathlib import Path

from recexp.config.jobdir import load_job_config
from recexp.errors import ConfigError, DataError


def load_job(job: Path, device_name: str = "auto", require_checkpoint: bool = True):
    """``job``'s config, its built parts (model, data, evaluator) and the loaded ``best.pt`` state
    (``{}`` for a count model's job, which has no checkpoint, when ``require_checkpoint`` is off).
    Every way a folder can fail to be a job is one :class:`~recexp.errors.UserError` line."""
    from recexp.config.prepare import prepare
    from recexp.runtime import threads
    from recexp.training import checkpoint, parts

    cfg_path, ckpt_path = job / ".hydra" / "config.yaml", job / "best.pt"
    for p in (cfg_path, ckpt_path) if require_checkpoint else (cfg_path,):
        if not p.is_file():
            raise ConfigError(f"{p}: not found (expected a recexp job directory)")
    cfg = prepare(load_job_config(job), "evaluate")  # the project's _target_s, the folder's values only
    threads.apply(cfg.get("threads"))
    p = parts.build(cfg, device=device_name, training=False)
    p.model.fit(p.data)  # count-based models; a no-op for gradient models
    if not ckpt_path.is_file():
        return cfg, p, {}
    try:
        state = checkpoint.load(ckpt_path, map_location=p.device)
    except Exception as exc:  # truncated, garbage, or a pickle weights_only refuses
        raise DataError(f"{ckpt_path}: not a readable checkpoint ({type(exc).__name__})") from None
    try:
        p.model.load_state_dict(state["model"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise DataError(f"{ckpt_path}: does not fit this job's model ({str(exc).splitlines()[0][:200]})") from None
    return cfg, p, state


def evaluate(job: Path, device_name: str = "auto") -> dict[str, float]:
    """Metrics of ``job``'s ``best.pt``; also written to ``evaluate.json`` and
    ``per_user_test.parquet`` in ``job``."""
    from recexp.data.batches import EvalBatches

    cfg, p, state = load_job(job, device_name)
    model, data, evaluator = p.model, p.data, p.evaluator
    L = int(cfg.max_len)
    valid, _ = evaluator.evaluate(model, EvalBatches(data.valid, L, p.device))
    test, per_user = evaluator.evaluate(model, EvalBatches(data.test, L, p.device), per_user=True)
    out = {"best_epoch": float(state.get("epoch", 0))} | {f"valid/{k}": v for k, v in valid.items()} | {
        f"test/{k}": v for k, v in test.items()}
    from recexp.job import Job, write_test_outputs
    from recexp.record.evaluated import log_to_run
    from recexp.record.tracker import Tracker

    files = write_test_outputs(Job(cfg, {}, job, Tracker()), out, per_user, data.raw_users, "evaluate.json")
    rid = log_to_run(job, cfg, out, files)
    print(f"logged to MLflow run {rid}" if rid else f"no MLflow run recorded {job}: nothing logged",
          file=sys.stderr)
    return out
