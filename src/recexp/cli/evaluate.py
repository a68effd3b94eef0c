"""``recexp evaluate JOB_DIR``: evaluate a job directory's best checkpoint on validation and test."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from recexp.errors import UserError


def main(argv: list[str]) -> int:
    from recexp.jobs.evaluate import __doc__ as doc

    ap = argparse.ArgumentParser(prog="recexp evaluate", description=doc)
    ap.add_argument("job_dir", help="a Hydra job directory holding .hydra/config.yaml and best.pt")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    console = Console(stderr=True)
    from recexp.jobs.evaluate import evaluate

    try:
        metrics = evaluate(Path(args.job_dir), args.device)
    except UserError as exc:
        console.print(f"error: {exc}", soft_wrap=True, markup=False, style="bold red")
        return 2
    from recexp.cli.hydra_job import summary_table

    console.print(summary_table(metrics))
    print(json.dumps(metrics, indent=2))
    return 0
