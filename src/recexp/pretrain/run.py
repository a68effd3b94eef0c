"""``recexp pretrain``: one self-supervised pre-training run, tracked in MLflow, whose checkpoint
(``pretrained.pt``) is a run artifact. A fine-tuning run points at it with
``model.pretrained=<run id or path>``; with ``pretrain.finetune=true`` the same job fine-tunes
right after (two linked runs), which is what an ablation sweep over the objective weights needs.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console
from rich.markup import escape

from recexp.errors import ConfigError, UserError

console = Console(stderr=True)


def pretrain(cfg: DictConfig, output_dir: Path) -> dict[str, float | str]:
    """Pre-train, save ``pretrained.pt``, and fine-tune too when ``pretrain.finetune``. Returns the
    pre-training figures plus ``pretrain_run_id`` / ``checkpoint`` (and the fine-tune metrics)."""
    from recexp.data.attributes import load_item_attributes
    from recexp.data.prepare import prepare
    from recexp.models.s3rec import S3Rec
    from recexp.pretrain.load import CHECKPOINT_NAME, KIND
    from recexp.run import make_tracker, resolve_device, seed_everything
    from recexp.schema import validate
    from recexp.training import checkpoint

    if cfg.get("pretrain") is None:
        raise ConfigError("pretrain: no pre-training config selected (use pretrain=s3rec)")
    resolved = validate(cfg)  # every bad value one line, before any data, store or run
    output_dir.mkdir(parents=True, exist_ok=True)
    from recexp.resolve import resolve_config

    cfg = resolve_config(cfg)  # the fine-tuning loss/sampler as they will run, in this run's params too
    tracker = make_tracker(cfg)
    tracker.start(f"pretrain-{cfg.dataset.name}-s{cfg.seed}", resolved,
                  {"recexp.role": "pretrain", "recexp.dataset": str(cfg.dataset.name),
                   "recexp.hypothesis": str(cfg.get("hypothesis") or ""),
                   "mlflow.note.content": str(cfg.get("hypothesis") or "")})
    status = "FAILED"
    try:
        seed_everything(int(cfg.seed))
        device = resolve_device(cfg.device)
        ds = OmegaConf.to_container(cfg.dataset, resolve=True)
        data_dir = Path(str(cfg.data_dir)).expanduser()
        data = prepare(ds, OmegaConf.to_container(cfg.split, resolve=True), instantiate(cfg.split),
                       data_dir, Path(str(cfg.paths.cache_dir)))
        trainer = instantiate(cfg.pretrain)
        attrs = load_item_attributes(ds, data_dir, data.item_raw_ids) if trainer.needs_attributes else None
        target = str(cfg.model.get("_target_", ""))
        if not isinstance(get_class(target), type) or not issubclass(get_class(target), S3Rec):
            raise ConfigError(f"model={target.rsplit('.', 1)[-1]} has no pre-training objectives: use model=s3rec")
        model = instantiate(cfg.model, num_items=data.num_items, num_users=data.num_users,
                            num_attributes=attrs.num_attributes if attrs else 0).to(device)
        tracker.set_tags({"recexp.dataset_fingerprint": data.fingerprint, "recexp.device": str(device),
                          "recexp.model": type(model).__name__, "mlflow.runName":
                          f"s3rec-pretrain-{cfg.dataset.name}-s{cfg.seed}",
                          "recexp.pretrain_weights": json.dumps(trainer.weights)})
        if attrs is not None:
            tracker.log_params({"data.attributes": attrs.num_attributes, "data.attribute_coverage": attrs.coverage()})
        def save(epoch: int) -> Path:
            return checkpoint.save(output_dir / CHECKPOINT_NAME, model=model.state_dict(), kind=KIND,
                                   epoch=epoch, fingerprint=data.fingerprint, dataset=str(cfg.dataset.name),
                                   num_items=data.num_items, num_attributes=model.num_attributes,
                                   weights=trainer.weights, config=resolved)

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            tracker.log_metrics(metrics, step=epoch)
            save(epoch)  # every epoch: an interrupted run still leaves a usable checkpoint (by path)

        t0 = time.perf_counter()
        history = trainer.fit(model, data, attrs.to_tensor(device, extra_rows=1) if attrs else None,
                              int(cfg.max_len), device, seed=int(cfg.seed), on_epoch=on_epoch)
        path = save(len(history))
        tracker.log_artifact(path)
        final: dict[str, float | str] = {**(history[-1] if history else {}), "pretrain_s": time.perf_counter() - t0}
        tracker.log_metrics({k: float(v) for k, v in final.items()})
        final |= {"pretrain_run_id": tracker.run_id or "", "checkpoint": str(path)}
        status = "FINISHED"
    except UserError as exc:
        tracker.set_tags({"recexp.error": str(exc)[:5000]})
        raise
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracker.end(status)
    if trainer.finetune:
        from recexp.run import train

        with open_dict(cfg):  # the run id links the runs in MLflow; the path works without tracking
            cfg.model.pretrained = final["pretrain_run_id"] or final["checkpoint"]
        final |= train(cfg, output_dir / "finetune")
    return final


def task(cfg: DictConfig) -> float:
    """Hydra entry for ``recexp pretrain``: one-line errors, the fine-tuned metric for sweepers."""
    for name in ("alembic", "mlflow", "urllib3", "git"):
        logging.getLogger(name).setLevel(logging.WARNING)
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    try:
        result = pretrain(cfg, out)
    except UserError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        if hc.mode == RunMode.MULTIRUN:
            return math.nan
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        console.print(f"[bold yellow]interrupted:[/] run marked KILLED; outputs in {out}", soft_wrap=True)
        raise SystemExit(130) from None
    console.print(f"pre-trained checkpoint: {result['checkpoint']}", soft_wrap=True)
    if result.get("pretrain_run_id"):
        console.print(f"fine-tune with: recexp train model=s3rec dataset={cfg.dataset.name} "
                      f"model.pretrained={result['pretrain_run_id']}", soft_wrap=True)
    metric = result.get(cfg.optimized_metric)
    if metric is not None:
        console.print(f"fine-tuned {cfg.optimized_metric} = {float(metric):.4f}  test/ndcg_10 = "
                      f"{float(result.get('test/ndcg_10', math.nan)):.4f}  test/hr_10 = "
                      f"{float(result.get('test/hr_10', math.nan)):.4f}", soft_wrap=True)
    return float(metric) if metric is not None else math.nan
