"""``recexp train``'s job: build the parts, fit, test once from the best validation epoch, record.

The parts come from :mod:`recexp.training.parts`, the tracked-run lifecycle from
:mod:`recexp.record.lifecycle`; this module only wires them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from recexp.config.hashing import config_hash
from recexp.data.audit import audit_json
from recexp.data.batches import EvalBatches
from recexp.errors import ConfigError
from recexp.job import Job, open_job, recorded, write_test_outputs
from recexp.jobs import launch
from recexp.record import resume, tag
from recexp.record.hypothesis_tags import hypothesis_env_tags
from recexp.record.store import SWEEP_ENV
from recexp.record.sweep_report import job_info
from recexp.record.ui_view import landing_url, ui_base
from recexp.runtime import distributed, terminal
from recexp.runtime import threads as cpu_threads
from recexp.runtime.distributed import World
from recexp.training import checkpoint, ddp, parts

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


def headline_tags(cfg: DictConfig, model: Any, loss: Any, sampler: Any) -> dict[str, str]:
    """The short, plain-named tags the MLflow UI's landing view shows first (record/ui_view.py)."""
    ch = cfg.get("choices") or {}
    return {tag.COL_DATASET: str(cfg.dataset.name),
            tag.COL_MODEL: str(ch.get("model") or type(model).__name__.lower()),
            tag.COL_LOSS: str(ch.get("loss") or getattr(loss, "name", "none")),
            tag.COL_SAMPLER: str(ch.get("sampler") or getattr(sampler, "name", "none"))}


def train(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """One run end to end. Returns every logged final metric (``valid/...``, ``test/...``).

    ``trainer.num_processes=N`` > 1: the job runs in N processes here (:mod:`recexp.jobs.launch`),
    each of which comes back here as one rank; under ``torchrun`` this process is one rank of
    torchrun's group. A rank joins the process group, rank 0 alone records."""
    world = distributed.from_env()
    if world is None and (launch.requested(cfg) > 1 or distributed.forced()):
        return launch.spawn(cfg, output_dir)
    job = open_job(cfg, output_dir, "train", record=world is None or world.main)
    if world is None:
        return _job(job, None)
    launch.refuse(job.cfg, world)
    distributed.join(world, parts.resolve_device(distributed.rank_device(job.cfg.device, world)))
    try:
        result = _job(job, world)
    except BaseException:
        distributed.leave(world)
        raise
    distributed.leave(world, clean=True)
    return result


def _job(job: Job, world: World | None) -> dict[str, float]:
    cfg, tracker, output_dir = job.cfg, job.tracker, job.output_dir
    chash = config_hash(job.resolved)
    tags = {tag.PRESET: preset_choice(), **job_info(), tag.CONFIG_HASH: chash,
            **resume.liveness_tags(output_dir), **hypothesis_env_tags()}
    skip = str(cfg.tracking.get("skip_finished", "multirun"))
    if skip not in ("always", "multirun", "never"):
        raise ConfigError(f"tracking.skip_finished={skip!r}: expected always, multirun or never")
    plan = resume.plan(tracker, chash, bool(cfg.tracking.get("resume", False)),
                       skip == "always" or (skip == "multirun" and bool(os.environ.get(SWEEP_ENV))),
                       lambda p: checkpoint.resume_problem(p, chash, int(cfg.seed)))
    plan = distributed.broadcast(plan, world)  # rank 0's: every rank skips or resumes alike
    if plan.skip is not None:  # a rerun of an interrupted sweep: this job already FINISHED
        log.info("skipped: run %s already FINISHED with this config (hash %s)", plan.skipped_run_id, chash)
        tracker.attach_to_sweep(plan.skipped_run_id)
        return {**plan.skip, "skipped": 1.0, "skipped_run": plan.skipped_run_id}
    if plan.resume_run_id:
        msg = (f"resuming run {plan.resume_run_id} from {plan.resume_from} (its job died; config hash {chash} "
               f"and seed {cfg.seed} match)")
        if world is None or world.main:
            terminal.console.print(msg, soft_wrap=True, highlight=False, markup=False)
        log.info(msg)  # the job's log file too (the terminal shows warnings only from the log)
    with recorded(job, f"{cfg.dataset.name}-s{cfg.seed}", tags, plan.resume_run_id), \
            launch.rank_errors(world, output_dir):
        if world is not None and not plan.resume_run_id:
            tracker.log_params(launch.world_params(world))  # (a no-op tracker on ranks but 0)
        return _train(job, plan.resume_from, world)


def _train(job: Job, resume_from: Path | None = None, world: World | None = None) -> dict[str, float]:
    cfg, output_dir, tracker, resolved = job.cfg, job.output_dir, job.tracker, job.resolved
    main = world is None or world.main
    if world is None:  # (a rank's threads were set by its launcher: jobs/launch.py, or torchrun's OMP_NUM_THREADS)
        cpu_threads.apply(cfg.get("threads"))
    p = parts.build(cfg, device=None if world is None else distributed.rank_device(cfg.device, world))
    model, data, loss, evaluator = p.model, p.data, p.loss, p.evaluator
    if cfg.model.get("pretrained"):  # fine-tune from a `recexp pretrain` run (id) or checkpoint path
        from recexp.record.pretrained import load_pretrained

        tracker.set_tags(load_pretrained(model, str(cfg.model.pretrained), data.fingerprint,
                                         tracking_uri=cfg.tracking.get("uri"), runs_dir=cfg.paths.runs_dir))
    if main and not terminal.compact():
        terminal.print_header(cfg, data, model, p.device, tracker.run_id)
    trainer = parts.instantiate_user(cfg.trainer)
    batches = parts.build_train_batches(cfg, data, p.device)
    if world is not None:
        launch.refuse_windows(len(batches), world.size)
    tracker.set_tags({tag.DATASET_FINGERPRINT: data.fingerprint, tag.DEVICE: str(p.device),
                      tag.CPU_THREADS: cpu_threads.described(),
                      # what the training step ran in: amp / cpu_amp ask, the device decides
                      tag.PRECISION: "bf16-autocast" if trainer.uses_amp(p.device) else "fp32",
                      tag.MODEL: type(model).__name__, tag.LOSS: getattr(loss, "name", ""),
                      tag.SAMPLER: getattr(p.sampler, "name", ""),
                      tag.PROTOCOL: json.dumps({"split": type(p.splitter).__name__, **evaluator.protocol()}),
                      tag.RUN_NAME: run_name(cfg, model, loss), **headline_tags(cfg, model, loss, p.sampler)})
    # dataset statistics describe the input, not the run's outcome: params (one value each), not metrics
    tracker.log_params({f"data.{k}": v for k, v in data.summary().items()})
    tracker.log_metrics({"data/prepare_s": p.prepare_s})
    tracker.set_tags({tag.AUDIT: audit_json(data, cfg.dataset)})  # leakage figures of this split (docs/audit.md)

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        tracker.log_metrics(metrics | {"train/cpu_threads": float(cpu_threads.count())}, step=epoch)
        tracker.heartbeat()
        moved = cpu_threads.rebalance() if world is None else None  # another job started or ended
        if moved and main and not terminal.compact():
            terminal.console.print(f"from epoch {epoch + 1}: {moved}", soft_wrap=True, highlight=False, markup=False)

    t1 = time.perf_counter()
    result = trainer.fit(model, loss, p.sampler, data, evaluator, int(cfg.max_len), p.device, seed=int(cfg.seed),
                         on_epoch=on_epoch, ckpt_dir=output_dir, config=resolved, resume_from=resume_from,
                         batches=batches, world=world)
    fit_s = time.perf_counter() - t1
    warning = terminal.still_improving(result.best_epoch, result.epochs_run, int(cfg.trainer.max_epochs),
                                       result.stopped_early) if model.trainable else None
    if warning and main:
        terminal.console.print(f"[bold yellow]warning:[/] {warning}", soft_wrap=True)
        tracker.set_tags({tag.WARNING: warning})
    t2 = time.perf_counter()
    # every rank scores its share of the test batches; rank 0 reduces them (ddp.evaluate)
    test_metrics, per_user = ddp.evaluate(evaluator, model, EvalBatches(data.test, int(cfg.max_len), p.device),
                                          world, per_user=True)
    # validation figures of the restored best epoch; logged one step after the last epoch
    final = {k: v for k, v in result.best.items() if k.startswith("valid/") and k != "valid/eval_s"}
    final |= {f"test/{k}": v for k, v in test_metrics.items()}
    final |= {"best_epoch": float(result.best_epoch), "epochs_run": float(result.epochs_run),
              "fit_s": fit_s, "minutes": fit_s / 60, "test/eval_s": time.perf_counter() - t2}
    if not main:  # rank 0 writes the outputs and the record
        return final
    tracker.log_metrics({k: v for k, v in final.items() if k.startswith("valid/")}, step=result.epochs_run + 1)
    tracker.log_metrics({k: v for k, v in final.items() if not k.startswith("valid/")})
    outputs = write_test_outputs(job, final, per_user, data.raw_users)
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    from recexp.serving.export import export_model  # the best model, usable by `recexp recommend`

    export_model(cfg, model, data, output_dir, tracker)
    for path in (*outputs, output_dir / "config.yaml"):
        tracker.log_artifact(path)
    uri = getattr(tracker, "uri", None)
    where = landing_url(ui_base(uri), getattr(tracker, "_exp_id", None)) if tracker.run_id else None
    return final | {"mlflow_where": terminal.where(tracker.run_id, where, uri) or ""}
