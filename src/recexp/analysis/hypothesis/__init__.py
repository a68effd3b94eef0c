"""``recexp hypothesis run FILE`` / ``recexp hypothesis show FILE``: a pre-registered hypothesis
(``hypotheses/<name>.yaml``, schema in ``spec.py`` and docs/hypotheses.md) run to a verdict."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recexp.errors import UserError

USAGE = """\
usage: recexp hypothesis run FILE [--out DIR] [--no-report]
       recexp hypothesis show FILE [--out DIR]

run   register the file (its sha256, first time only), run or resume its sweep through
      `recexp train -m` (FINISHED jobs are skipped), then print the verdict and write the report
      (Markdown + PNG + LaTeX, default runs/hypotheses/<name>/), logged to MLflow
show  print the verdict again from MLflow, without training (--out DIR: also write the report)
"""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in ("run", "show"):
        print(USAGE, file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    ap = argparse.ArgumentParser(prog=f"recexp hypothesis {argv[0]}")
    ap.add_argument("file")
    ap.add_argument("--out", default=None, help="report folder (run: default runs/hypotheses/<name>)")
    ap.add_argument("--no-report", action="store_true", help="run: print the verdict only")
    ap.add_argument("--uri", default=None, help="MLflow tracking URI (default as for recexp train)")
    args = ap.parse_args(argv[1:])
    try:
        return _main(argv[0], args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _main(cmd: str, args: argparse.Namespace) -> int:
    import os

    from recexp.analysis.hypothesis import spec

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per per-user table
    h = spec.load(args.file)
    from recexp.analysis.hypothesis.analysis import analyse, text
    from recexp.record.store import ensure_experiment, tracking_uri

    uri = tracking_uri(args.uri)
    if cmd == "run":
        from mlflow.tracking import MlflowClient

        from recexp.analysis.hypothesis.runner import register, sweep
        from recexp.record.ui_view import write_view

        exp_id = ensure_experiment(uri, h.experiment)  # first: a new store is created quietly, under its lock
        write_view(MlflowClient(uri), exp_id, [h.key])  # the UI shows the factor as a column (one level per sweep)
        reg = register(MlflowClient(uri), exp_id, h)
        print(reg.registered_line(h) if reg.created else reg.first_line(h), file=sys.stderr)
        sweep(h)
    v = analyse(h, uri)
    print(text(v))
    out = args.out or (None if cmd == "show" or args.no_report else f"runs/hypotheses/{h.name}")
    if out:
        from recexp.analysis.hypothesis.report import write

        files = write(v, Path(out))
        print(f"report: {', '.join(str(f) for f in files)} (logged to MLflow, experiment {h.experiment})")
    if cmd == "run":
        from recexp.record.ui_view import landing_url, ui_base

        print(f"MLflow: {landing_url(ui_base(uri), v.experiment_id)}", file=sys.stderr)
    return 0
