"""The Hydra task: instantiate the four parts, wire them to the trainer, fit, test once."""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from recexp import terminal
from recexp.data.audit import audit_tag
from recexp.data.batches import EvalBatches
from recexp.data.prepare import prepare
from recexp.errors import ConfigError, UserError
from recexp.faults import close_run, disk_error
from recexp.hypothesis.tags import hypothesis_env_tags
from recexp.resolve import resolve_config
from recexp.schema import validate
from recexp.tracking import resume
from recexp.tracking.store import SWEEP_ENV
from recexp.tracking.sweep_report import job_info
from recexp.tracking.tracker import MlflowTracker, Tracker
from recexp.training import checkpoint

log = logging.getLogger("recexp")


def resolve_device(name: str) -> torch.device:
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name}: no CUDA device is available here (use device=cpu or device=auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r}: expected auto, cpu, cuda or cuda:N") from None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def instantiate_user(node: DictConfig, **runtime: Any) -> Any:
    """``instantiate``, but a :class:`UserError` raised by a constructor (a bad config value)
    comes out as itself, one line, instead of wrapped in Hydra's InstantiationException."""
    try:
        return instantiate(node, **runtime)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, UserError):
            raise exc.__cause__ from None
        if isinstance(exc.__cause__, TypeError | ValueError):  # a value the constructor refuses
            target = node.get("_target_", "?") if hasattr(node, "get") else "?"
            raise ConfigError(f"{target}: {str(exc.__cause__).splitlines()[0]}") from None
        raise


def model_choice(model: Any) -> str:
    """The name the user typed (``model=markov``), falling back to the class name outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        name = HydraConfig.get().runtime.choices.get("model")
        if name:
            return str(name)
    except ValueError:  # not inside a Hydra run
        pass
    return type(model).__name__.lower()


def build_loss_and_sampler(cfg: DictConfig, model) -> tuple[Any, Any]:
    """Instantiate loss and sampler (``auto`` resolved by :func:`recexp.resolve.resolve_config`),
    refusing combinations that make no sense with a one-line explanation (docs/combinations.md)."""
    cfg = resolve_config(cfg)
    loss = instantiate_user(cfg.loss, num_items=model.num_items)
    sampler = instantiate_user(cfg.sampler)
    model_name = model_choice(model)
    if model.trainable:
        allowed = getattr(model, "supported_losses", None)
        if allowed is not None and loss.name not in allowed:
            raise ConfigError(f"model={model_name} cannot be trained with loss={loss.name}: "
                              f"it supports {', '.join(allowed) or 'no loss (it is fit by counting)'}")
        check_combination(loss, sampler, model.num_items)
    return loss, sampler


def check_combination(loss: Any, sampler: Any, num_items: int) -> None:
    """One-line ConfigError for every (loss, sampler) pair that cannot work."""
    if loss.requires == "full" and sampler.name != "none":
        raise ConfigError(f"loss={loss.name} scores every item, so sampler={sampler.name} has nothing to do: "
                          "use sampler=none, or a sampled loss (bce, bpr, sampled_softmax, ...)")
    if loss.requires == "sampled" and sampler.name == "none":
        raise ConfigError(f"loss={loss.name} needs negatives: choose a sampler (e.g. sampler=uniform)")
    k = getattr(sampler, "num_negatives", 0) + getattr(getattr(sampler, "extra", None), "num_negatives", 0)
    if loss.name == "gbce" and not 0 < k < num_items:
        raise ConfigError(f"loss=gbce with sampler.num_negatives={k}: gBCE's sampling rate K/(N-1) needs "
                          f"1 <= K < N={num_items} items")
    if loss.name in ("bpr_max", "top1_max") and k < 2:
        raise ConfigError(f"loss={loss.name} weights negatives by a softmax over them: with "
                          f"sampler.num_negatives={k} it is just bpr/top1 -- use more negatives or that loss")


def make_tracker(cfg: DictConfig) -> Tracker:
    t = cfg.tracking
    backend = t.get("backend", "mlflow")
    if backend == "none":
        return Tracker()
    if backend != "mlflow":
        raise ConfigError(f"tracking.backend={backend!r}: expected mlflow or none")
    return MlflowTracker(uri=t.get("uri"), experiment=t.experiment, runs_dir=cfg.paths.runs_dir,
                         stale_after_s=float(t.get("stale_after_s", 1800)))


def preset_choice() -> str:
    """The ``experiment=`` preset of this Hydra run ('' when none, or outside Hydra): recorded as
    the tag ``recexp.preset`` so ``recexp results`` can name the preset behind each row."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return str(HydraConfig.get().runtime.choices.get("experiment") or "")
    except ValueError:  # not inside a Hydra run
        return ""


def run_name(cfg: DictConfig, model, loss) -> str:
    """``sasrec-ml-100k-ce-s1``: the option names the config records (``choices``)."""
    ch = cfg.get("choices") or {}
    return (f"{ch.get('model') or type(model).__name__.lower()}-{cfg.dataset.name}-"
            f"{ch.get('loss') or getattr(loss, 'name', 'none')}-s{cfg.seed}")


def train(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """One run end to end. Returns every logged final metric (``valid/...``, ``test/...``)."""
    resolved = validate(cfg)  # every bad value one line, before any data, store or run
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise (disk_error(exc) or exc) from None
    tracker = make_tracker(cfg)
    tags = {"recexp.hypothesis": str(cfg.get("hypothesis") or ""),
            "mlflow.note.content": str(cfg.get("hypothesis") or ""),
            "recexp.dataset": str(cfg.dataset.name), "recexp.preset": preset_choice(), **job_info()}
    try:
        cfg = resolve_config(cfg)  # before anything is hashed, logged or saved: the record is the run
    except UserError as exc:  # still one FAILED run with the reason, as for any other config error
        tracker.start(f"{cfg.dataset.name}-s{cfg.seed}", OmegaConf.to_container(cfg, resolve=False),
                      tags | {"recexp.error": str(exc)[:5000]})
        tracker.end("FAILED")
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
    tracker.start(f"{cfg.dataset.name}-s{cfg.seed}", resolved, tags, resume_run_id=plan.resume_run_id)
    status, reason = "FAILED", None
    try:
        out = _train(cfg, output_dir, tracker, resolved, plan.resume_from)
        status = "FINISHED"
        return out
    except KeyboardInterrupt:
        status, reason = "KILLED", "interrupted (Ctrl-C)"
        raise
    except UserError as exc:
        reason = str(exc)
        raise
    except OSError as exc:
        err = disk_error(exc)
        reason = str(err) if err else f"{type(exc).__name__}: {exc}"
        if err is None:
            raise
        raise err from None
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        close_run(tracker, status, {"recexp.error": reason[:5000]} if reason else None)


def _train(cfg: DictConfig, output_dir: Path, tracker: Tracker, resolved: dict,
           resume_from: Path | None = None) -> dict[str, float]:
    seed_everything(int(cfg.seed))
    device = resolve_device(cfg.device)
    splitter = instantiate_user(cfg.split)
    t0 = time.perf_counter()
    data = prepare(OmegaConf.to_container(cfg.dataset, resolve=True),
                   OmegaConf.to_container(cfg.split, resolve=True), splitter,
                   Path(str(cfg.data_dir)).expanduser(), Path(str(cfg.paths.cache_dir)))
    prep_s = time.perf_counter() - t0
    model = instantiate_user(cfg.model, num_items=data.num_items, num_users=data.num_users).to(device)
    if cfg.model.get("pretrained"):  # fine-tune from a `recexp pretrain` run (id) or checkpoint path
        from recexp.pretrain.load import load_pretrained

        tracker.set_tags(load_pretrained(model, str(cfg.model.pretrained), data.fingerprint,
                                         tracking_uri=cfg.tracking.get("uri"), runs_dir=cfg.paths.runs_dir))
    loss, sampler = build_loss_and_sampler(cfg, model)
    terminal.print_header(cfg, data, model, device, tracker.run_id)
    evaluator = instantiate_user(cfg.eval)
    if hasattr(evaluator, "set_popularity"):  # beyond-accuracy metrics / popularity-sampled candidates
        evaluator.set_popularity(data.item_counts())
    trainer = instantiate_user(cfg.trainer)
    tracker.set_tags({"recexp.dataset_fingerprint": data.fingerprint, "recexp.device": str(device),
                      "recexp.model": type(model).__name__, "recexp.loss": getattr(loss, "name", ""),
                      "recexp.sampler": getattr(sampler, "name", ""),
                      "recexp.protocol": json.dumps({"split": type(splitter).__name__, **evaluator.protocol()}),
                      "mlflow.runName": run_name(cfg, model, loss)})
    # dataset statistics describe the input, not the run's outcome: params (one value each), not metrics
    tracker.log_params({f"data.{k}": v for k, v in data.summary().items()})
    tracker.log_metrics({"data/prepare_s": prep_s})
    tracker.set_tags(audit_tag(data, cfg.dataset))  # leakage figures of this split (docs/audit.md)

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        tracker.log_metrics(metrics, step=epoch)
        tracker.heartbeat()

    t1 = time.perf_counter()
    result = trainer.fit(model, loss, sampler, data, evaluator, int(cfg.max_len), device, seed=int(cfg.seed),
                         on_epoch=on_epoch, ckpt_dir=output_dir, config=resolved,
                         resume_from=resume_from)
    fit_s = time.perf_counter() - t1
    warning = terminal.still_improving(result.best_epoch, result.epochs_run, int(cfg.trainer.max_epochs),
                                       result.stopped_early) if model.trainable else None
    if warning:
        terminal.console.print(f"[bold yellow]warning:[/] {warning}", soft_wrap=True)
        tracker.set_tags({"recexp.warning": warning})
    t2 = time.perf_counter()
    test_metrics, per_user = evaluator.evaluate(model, EvalBatches(data.test, int(cfg.max_len), device),
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
