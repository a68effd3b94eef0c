"""Markdown table of a loss x sampler multirun, read from its job folders (metrics.json,
config.yaml, .hydra/overrides.yaml). Jobs without metrics were refused at start-up or not run.

    python bench/sweep_table.py runs/multirun/2026-11-28/01-55-16
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def main(sweep_dir: Path) -> None:
    print("| job | loss | sampler | negatives | epochs | valid NDCG@10 | test NDCG@10 | test HR@10 | fit s |")
    print("|---|---|---|---|---|---|---|---|---|")
    jobs = sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    for job in jobs:
        overrides = dict(o.split("=", 1) for o in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()))
        loss, sampler = overrides.get("loss", "?"), overrides.get("sampler", "?")
        metrics_file = job / "metrics.json"
        if not metrics_file.is_file():
            print(f"| {job.name} | {loss} | {sampler} | - | - | refused / not run | | | |")
            continue
        m = json.loads(metrics_file.read_text())
        cfg = yaml.safe_load((job / "config.yaml").read_text())
        smp = cfg.get("sampler") or {}
        neg = "-" if sampler == "none" else f"{smp.get('num_negatives')}{' shared' if smp.get('shared') else ' per position'}"
        print(f"| {job.name} | {loss} | {sampler} | {neg} | {int(m['epochs_run'])} | {m['valid/ndcg_10']:.4f} | "
              f"{m['test/ndcg_10']:.4f} | {m['test/hr_10']:.4f} | {m['fit_s']:.0f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
