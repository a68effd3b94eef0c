"""``recexp train``'s job: build the parts, fit, test once from the best validation epoch, record.

The parts come from :mod:`recexp.parts`, the tracked-run lifecycle from
:mod:`recexp.tracking.lifecycle`; this module only wires them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from recexp import parts, terminal
from recexp.data.audit import audit_tag
from recexp.data.batches import EvalBatches
from recexp.errors import ConfigError, UserError
from recexp.faults import disk_error
from recexp.hypothesis.tags import hypothesis_env_tags
from recexp.resolve import resolve_config
from recexp.schema import validate
from recexp.tracking import resume
from recexp.tracking.lifecycle import base_tags, failed_run, make_tracker, tracked_run
from recexp.tracking.store import SWEEP_ENV
from recexp.tracking.sweep_report import job_info
from recexp.tracking.tracker import Tracker
from recexp.training import checkpoint

log = logging.getLogger("recexp")


def preset_choice() -> str:
    """The ``experiment=`` preset of this Hydra run ('' when none, or outside Hydra): recorded as
    the tag ``recexp.preset`` so ``recexp results`` can name the preset behind each row."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return str(HydraConfig.get().runtime.choices.get("experiment") or "")
    except ValueError:  # not inside a Hydra run
        return ""


def run_name(cfg: DictConfig, model: Any, loss: Any) -> str:
    """``sasrec-ml-100k-ce-s1``: the option names the config records (``choices``)."""
    ch = cfg.get("choices") or {}
    return (f"{ch.get('model') or type(model).__name__.lower()}-{cfg.dataset.name}-"
            f"{ch.get('loss') or getattr(loss, 'name', 'none')}-s{cfg.seed}")


def train(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """One run end to end. Returns every logged final metric (``valid/...``, ``test/...``)."""
    validate(cfg)  # every bad value one line, before any data, store or run
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise (disk_error(exc) or exc) from None
    tracker = make_tracker(cfg)
    tags = base_tags(cfg) | {"recexp.preset": preset_choice(), **job_info()}
    try:
        cfg = resolve_config(cfg)  # before anything is hashed, logged or saved: the record is the run
    except UserError as exc:  # still one FAILED run with the reason, as for any other config error
        failed_run(tracker, f"{cfg.dataset.name}-s{cfg.seed}", OmegaConf.to_container(cfg, resolve=False), tags, exc)
        raise
    resolved = OmegaConf.to_container(cfg, resolve=True)
    chash = resume.config_hash(resolved)
    tags |= {resume.HASH_TAG: chash, **resume.liveness_tags(output_dir), **hypothesis_env_tags()}
    skip = str(cfg.tracking.get("skip_finished", "multirun"))
    if skip not in ("always", "multirun", "never"):
        raise ConfigError(f"tracking.skip_finished={skip!r}: expected always, multirun or never")
    plan = resume.plan(tracker, chash, bool(cfg.tracking.get("resume", False)),
                       skip == "always" or (skip == "multirun" and bool(os.environ.get(SWEEP_ENV))),
                       lambda p: checkpoint.resume_problem(p, chash, int(cfg.seed)))
    if plan.skip is not None:  # a rerun of an interrupted sweep: this job already FINISHED
        log.info("skipped: run %s already FINISHED with this config (hash %s)", plan.skipped_run_id, chash)
        tracker.attach_to_sweep(plan.skipped_run_id)
        return {**plan.skip, "skipped": 1.0, "skipped_run": plan.skipped_run_id}
    if plan.resume_run_id:
        log.info("resuming run %s from %s (its job died; config hash %s and seed %s match)",
                 plan.resume_run_id, plan.resume_from, chash, cfg.seed)
    with tracked_run(tracker, f"{cfg.dataset.name}-s{cfg.seed}", resolved, tags, plan.resume_run_id):
        return _train(cfg, output_dir, tracker, resolved, plan.resume_from)


def _train(cfg: DictConfig, output_dir: Path, tracker: Tracker, resolved: dict,
           resume_from: Path | None = None) -> dict[str, float]:
    p = parts.build(cfg)
    model, data, loss, evaluator = p.model, p.data, p.loss, p.evaluator
    if cfg.model.get("pretrained"):  # fine-tune from a `recexp pretrain` run (id) or checkpoint path
        from recexp.pretrain.load import load_pretrained

        tracker.set_tags(load_pretrained(model, str(cfg.model.pretrained), data.fingerprint,
                                         tracking_uri=cfg.tracking.get("uri"), runs_dir=cfg.paths.runs_dir))
    terminal.print_header(cfg, data, model, p.device, tracker.run_id)
    trainer = parts.instantiate_user(cfg.trainer)
    tracker.set_tags({"recexp.dataset_fingerprint": data.fingerprint, "recexp.device": str(p.device),
                      # what the training step ran in: amp / cpu_amp ask, the device decides
                      "recexp.precision": "bf16-autocast" if trainer.uses_amp(p.device) else "fp32",
                      "recexp.model": type(model).__name__, "recexp.loss": getattr(loss, "name", ""),
                      "recexp.sampler": getattr(p.sampler, "name", ""),
                      "recexp.protocol": json.dumps({"split": type(p.splitter).__name__, **evaluator.protocol()}),
                      "mlflow.runName": run_name(cfg, model, loss)})
    # dataset statistics describe the input, not the run's outcome: params (one value each), not metrics
    tracker.log_params({f"data.{k}": v for k, v in data.summary().items()})
    tracker.log_metrics({"data/prepare_s": p.prepare_s})
    tracker.set_tags(audit_tag(data, cfg.dataset))  # leakage figures of this split (docs/audit.md)

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        tracker.log_metrics(metrics, step=epoch)
        tracker.heartbeat()

    t1 = time.perf_counter()
    result = trainer.fit(model, loss, p.sampler, data, evaluator, int(cfg.max_len), p.device, seed=int(cfg.seed),
                         on_epoch=on_epoch, ckpt_dir=output_dir, config=resolved, resume_from=resume_from,
                         batches=parts.build_train_batches(cfg, data, p.device))
    fit_s = time.perf_counter() - t1
    warning = terminal.still_improving(result.best_epoch, result.epochs_run, int(cfg.trainer.max_epochs),
                                       result.stopped_early) if model.trainable else None
    if warning:
        terminal.console.print(f"[bold yellow]warning:[/] {warning}", soft_wrap=True)
        tracker.set_tags({"recexp.warning": warning})
    t2 = time.perf_counter()
    test_metrics, per_user = evaluator.evaluate(model, EvalBatches(data.test, int(cfg.max_len), p.device),
                                                per_user=True)
    # validation figures of the restored best epoch; logged one step after the last epoch
    best = next((h for h in result.history if h.get(f"valid/{trainer.monitor}") == result.best_score),
                result.history[-1] if result.history else {})
    final = {k: v for k, v in best.items() if k.startswith("valid/") and k != "valid/eval_s"}
    final |= {f"test/{k}": v for k, v in test_metrics.items()}
    final |= {"best_epoch": float(result.best_epoch), "epochs_run": float(result.epochs_run),
              "fit_s": fit_s, "test/eval_s": time.perf_counter() - t2}
    tracker.log_metrics({k: v for k, v in final.items() if k.startswith("valid/")}, step=result.epochs_run + 1)
    tracker.log_metrics({k: v for k, v in final.items() if not k.startswith("valid/")})
    (output_dir / "metrics.json").write_text(json.dumps(final, indent=2))
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    per_user["user"] = data.raw_users(per_user["user"].to_numpy())
    per_user.to_parquet(output_dir / "per_user_test.parquet", index=False)
    from recexp.serving.export import export_model  # the best model, usable by `recexp recommend`

    export_model(cfg, model, data, output_dir, tracker)
    for name in ("metrics.json", "config.yaml", "per_user_test.parquet"):
        tracker.log_artifact(output_dir / name)
    return final | {"mlflow_where": terminal.where(tracker.run_id, getattr(tracker, "uri", None),
                                                   getattr(tracker, "_exp_id", None)) or ""}
