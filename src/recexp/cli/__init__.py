"""The ``recexp`` command: one module per verb in this package, imported only when that verb
runs, so ``recexp --help`` answers at once (torch and mlflow cost seconds to import).

A verb module has ``main(argv) -> int`` (the exit status); add one by adding a module and a row
to :data:`VERBS`.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

from recexp.config.compose import group_choices
from recexp.errors import UserError
from recexp.runtime import envvars, threads  # noqa: F401  (threads: its CPU-load window opens here)
from recexp.runtime.malloc import keep_freed_memory

# verb -> (module, one-line summary for `recexp --help`)
VERBS: dict[str, tuple[str, str]] = {
    "train": ("recexp.cli.train", "train and evaluate one run, or a sweep with -m (Hydra overrides: key=value)"),
    "pretrain": ("recexp.cli.pretrain", "self-supervised pre-training (S3Rec); its checkpoint is an MLflow artifact"),
    "compare": ("recexp.cli.compare", "group tracked runs and judge them against a baseline (the verdict engine: seeds, users, smallest effect)"),
    "results": ("recexp.cli.results",
                "the results tables (mean ± spread over seeds per setting) rebuilt from the MLflow store"),
    "evaluate": ("recexp.cli.evaluate",
                 "evaluate a job directory's best checkpoint on validation and test (stopped runs)"),
    "recommend": ("recexp.cli.recommend", "top-k items for users or a history, in raw ids, from a run id or job folder"),
    "datasets": ("recexp.cli.datasets", "list dataset configs and where their files are looked for"),
    "audit": ("recexp.cli.audit",
              "leakage audit of a dataset and split (training data after the test target, repeats, ...)"),
    "ui": ("recexp.cli.ui", "the MLflow UI over the store on 127.0.0.1; prints the address of the last-trained runs"),
    "hypothesis": ("recexp.cli.hypothesis",
                   "run FILE / show FILE: a pre-registered hypothesis (hypotheses/*.yaml) run to a verdict"),
}

EXAMPLES = """\
examples:
  recexp train model=sasrec                                    one run, sensible defaults
  recexp train model=sasrec dataset=beauty loss=bce           real data, another loss
  recexp train -m model=sasrec,pop seed=1,2                    a sweep: 4 runs, one MLflow parent run
  recexp train model=sasrec --cfg job                          print the composed config
  recexp train experiment=beauty_sasrec_ce                     a pinned preset behind a reported number
  recexp pretrain dataset=beauty                               S3Rec pre-training; prints the run id
  recexp train model=s3rec dataset=beauty model.pretrained=ID  fine-tune from it (runs linked in MLflow)
  recexp recommend RUN_ID --users 1 2 3 --k 10                 top-10 per user from a finished run
  recexp ui                                                    compare the runs in the MLflow UI (docs/ui.md)

`recexp train --help` lists every config group and its options.
"""


def groups_text() -> str:
    lines = ["config groups (pick with group=option):"]
    for group, options in group_choices().items():
        lines.append(f"  {group:<15} {', '.join(options) if options else '(none)'}")
    return "\n".join(lines)


def usage() -> str:
    width = max(map(len, VERBS))
    verbs = "\n".join(f"  {name:<{width}} {summary}" for name, (_, summary) in VERBS.items())
    return f"usage: recexp <command> [args]\n\ncommands:\n{verbs}\n\n{EXAMPLES}"


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `kill`, a scheduler's preemption or `timeout` end a run like Ctrl-C: checkpoint kept, MLflow
    # run KILLED (the default SIGTERM action would leave it RUNNING forever)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    if not argv or argv[0] in ("-h", "--help", "help"):
        try:
            print(usage())
            print(groups_text())
            sys.stdout.flush()
        except BrokenPipeError:  # `recexp --help | head`: the reader left; no traceback
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in VERBS:
        *rest_, last = VERBS
        print(f"recexp: unknown command {cmd!r} (expected {', '.join(rest_)} or {last})", file=sys.stderr)
        return 2
    try:  # the process settings read from the environment, checked before any work
        envvars.check()
        keep_freed_memory()  # glibc keeps freed tensors' memory for reuse (recexp.runtime.malloc: page faults were up to half a pass)
    except UserError as e:
        print(f"recexp: {e}", file=sys.stderr)
        return 2
    try:
        return importlib.import_module(VERBS[cmd][0]).main(rest)
    except BrokenPipeError:  # `recexp train --help | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
