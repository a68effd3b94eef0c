"""``recexp pretrain``'s job: one self-supervised pre-training run, tracked in MLflow, whose
checkpoint (``pretrained.pt``) is a run artifact. A fine-tuning run points at it with
``model.pretrained=<run id or path>``; with ``pretrain.finetune=true`` the same job fine-tunes
right after (two linked runs), which is what an ablation sweep over the objective weights needs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf, open_dict

from recexp.errors import ConfigError
from recexp.job import open_job, recorded
from recexp.record import tag
from recexp.runtime import threads as cpu_threads
from recexp.training import parts


def pretrain(cfg: DictConfig, output_dir: Path) -> dict[str, float | str]:
    """Pre-train, save ``pretrained.pt``, and fine-tune too when ``pretrain.finetune``. Returns the
    pre-training figures plus ``pretrain_run_id`` / ``checkpoint`` (and the fine-tune metrics)."""
    from recexp.data.attributes import load_item_attributes
    from recexp.models.s3rec import S3Rec
    from recexp.record.pretrained import CHECKPOINT_NAME, KIND
    from recexp.training import checkpoint

    job = open_job(cfg, output_dir, "pretrain")  # the fine-tuning loss/sampler resolved as they will run
    cfg, tracker, resolved = job.cfg, job.tracker, job.resolved
    with recorded(job, f"pretrain-{cfg.dataset.name}-s{cfg.seed}", {tag.ROLE: "pretrain"}):
        parts.seed_everything(int(cfg.seed))
        tracker.set_tags({tag.CPU_THREADS: cpu_threads.apply(cfg.get("threads"))})
        device = parts.resolve_device(cfg.device)
        data, _, _ = parts.prepare_data(cfg)
        trainer = parts.instantiate_user(cfg.pretrain)
        attrs = (load_item_attributes(OmegaConf.to_container(cfg.dataset, resolve=True),
                                      Path(str(cfg.data_dir)).expanduser(), data.item_raw_ids)
                 if trainer.needs_attributes else None)
        target = str(cfg.model.get("_target_", ""))
        if not isinstance(get_class(target), type) or not issubclass(get_class(target), S3Rec):
            raise ConfigError(f"model={target.rsplit('.', 1)[-1]} has no pre-training objectives: use model=s3rec")
        model = parts.build_model(cfg, data, device, num_attributes=attrs.num_attributes if attrs else 0)
        tracker.set_tags({tag.DATASET_FINGERPRINT: data.fingerprint, tag.DEVICE: str(device),
                          tag.MODEL: type(model).__name__, tag.RUN_NAME:
                          f"s3rec-pretrain-{cfg.dataset.name}-s{cfg.seed}",
                          tag.PRETRAIN_WEIGHTS: json.dumps(trainer.weights)})
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
    if trainer.finetune:
        from recexp.jobs.train import train

        with open_dict(cfg):  # the run id links the runs in MLflow; the path works without tracking
            cfg.model.pretrained = final["pretrain_run_id"] or final["checkpoint"]
        final |= train(cfg, output_dir / "finetune")
    return final
