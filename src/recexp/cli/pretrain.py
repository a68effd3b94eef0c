"""``recexp pretrain``: the train config plus ``pretrain=s3rec`` and ``model=s3rec`` unless given
(or set by an experiment preset)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from recexp.cli.hydra_job import console, hydra_main, run_job

HELP = ("usage: recexp pretrain [-m] [key=value ...]\n\nPre-train S3Rec (AAP, MIP, MAP, SP) on the "
        "training split; the checkpoint is\nlogged as the MLflow artifact pretrained.pt. Keys: "
        "pretrain.epochs, pretrain.*_weight,\npretrain.drop=aap+map (ablation), pretrain.finetune=true "
        "(fine-tune in the same job).\n")


def _job(cfg: DictConfig, out: Path) -> Mapping[str, Any]:
    from recexp.jobs.pretrain import pretrain

    return pretrain(cfg, out)


def _report(cfg: DictConfig, result: Mapping[str, Any], out: Path) -> None:
    console.print(f"pre-trained checkpoint: {result['checkpoint']}", soft_wrap=True)
    if result.get("pretrain_run_id"):
        console.print(f"fine-tune with: recexp train model=s3rec dataset={cfg.dataset.name} "
                      f"model.pretrained={result['pretrain_run_id']}", soft_wrap=True)
    metric = result.get(cfg.optimized_metric)
    if metric is not None:
        console.print(f"fine-tuned {cfg.optimized_metric} = {float(metric):.4f}  test/ndcg_10 = "
                      f"{float(result.get('test/ndcg_10', math.nan)):.4f}  test/hr_10 = "
                      f"{float(result.get('test/hr_10', math.nan)):.4f}", soft_wrap=True)


def task(cfg: DictConfig) -> float:
    return run_job(cfg, _job, _report)


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        from recexp.cli.train import help_text

        print(HELP)
        print(help_text().split("\n\n", 1)[1])
        return 0
    given = {a.split("=", 1)[0].lstrip("+~") for a in argv if "=" in a}
    preset = "experiment" in given
    extra = [f"{k}=s3rec" for k in ("pretrain", "model") if k not in given and not preset]
    return hydra_main("recexp-pretrain", [*extra, *argv], task)
