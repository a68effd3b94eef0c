"""``recexp evaluate JOB_DIR``: evaluate a job's best-validation checkpoint (``best.pt``) once on
its validation and test sets, with the job's own config. For a run stopped early (Ctrl-C, a time
budget): the checkpoint was still selected on validation only."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console

from recexp.errors import ConfigError, DataError, UserError
from recexp.jobdir import load_job_config


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="recexp evaluate", description=__doc__)
    ap.add_argument("job_dir", help="a Hydra job directory holding .hydra/config.yaml and best.pt")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    console = Console(stderr=True)
    try:
        metrics = evaluate(Path(args.job_dir), args.device)
    except UserError as exc:
        console.print(f"error: {exc}", soft_wrap=True, markup=False, style="bold red")
        return 2
    from recexp.hydra_task import summary_table

    console.print(summary_table(metrics))
    print(json.dumps(metrics, indent=2))
    return 0


def evaluate(job: Path, device_name: str = "auto") -> dict[str, float]:
    from recexp.data.batches import EvalBatches
    from recexp.data.prepare import prepare
    from recexp.run import instantiate_user, resolve_device
    from recexp.schema import validate
    from recexp.training import checkpoint

    cfg_path, ckpt_path = job / ".hydra" / "config.yaml", job / "best.pt"
    for p in (cfg_path, ckpt_path):
        if not p.is_file():
            raise ConfigError(f"{p}: not found (expected a recexp job directory)")
    cfg = load_job_config(job)  # the project's _target_s, the folder's values only
    validate(cfg)
    device = resolve_device(device_name)
    data = prepare(OmegaConf.to_container(cfg.dataset, resolve=True),
                   OmegaConf.to_container(cfg.split, resolve=True), instantiate_user(cfg.split),
                   Path(str(cfg.data_dir)).expanduser(), Path(str(cfg.paths.cache_dir)))
    model = instantiate_user(cfg.model, num_items=data.num_items, num_users=data.num_users).to(device)
    try:
        state = checkpoint.load(ckpt_path, map_location=device)
    except Exception as exc:  # truncated, garbage, or a pickle weights_only refuses
        raise DataError(f"{ckpt_path}: not a readable checkpoint ({type(exc).__name__})") from None
    model.fit(data)  # count-based models; a no-op for gradient models
    try:
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise DataError(f"{ckpt_path}: does not fit this job's model ({str(exc).splitlines()[0][:200]})") from None
    evaluator = instantiate_user(cfg.eval)
    if hasattr(evaluator, "set_popularity"):
        evaluator.set_popularity(data.item_counts())
    L = int(cfg.max_len)
    valid, _ = evaluator.evaluate(model, EvalBatches(data.valid, L, device))
    test, per_user = evaluator.evaluate(model, EvalBatches(data.test, L, device), per_user=True)
    out = {"best_epoch": float(state.get("epoch", 0))} | {f"valid/{k}": v for k, v in valid.items()} | {
        f"test/{k}": v for k, v in test.items()}
    (job / "evaluate.json").write_text(json.dumps(out, indent=2))
    per_user["user"] = data.raw_users(per_user["user"].to_numpy())
    per_user.to_parquet(job / "per_user_test.parquet", index=False)
    from recexp.tracking.evaluated import log_to_run

    rid = log_to_run(job, cfg, out, [job / "evaluate.json", job / "per_user_test.parquet"])
    print(f"logged to MLflow run {rid}" if rid else f"no MLflow run recorded {job}: nothing logged",
          file=sys.stderr)
    return out
