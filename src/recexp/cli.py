"""The ``recexp`` command. Heavy modules (torch, mlflow) are imported only when a subcommand
needs them, so ``--help`` answers at once."""

from __future__ import annotations

import signal
import sys

from recexp.config import CONFIG_NAME, conf_dir, group_choices
from recexp.faults import check_runs_dir
from recexp.precheck import compose_error

USAGE = """\
usage: recexp <command> [args]

commands:
  train     train and evaluate one run, or a sweep with -m (Hydra overrides: key=value)
  pretrain  self-supervised pre-training (S3Rec); its checkpoint is an MLflow artifact
  compare   group tracked runs, compare them with paired statistical tests
  results   the results tables (mean ± spread over seeds per setting) rebuilt from the MLflow store
  evaluate  evaluate a job directory's best checkpoint on validation and test (stopped runs)
  recommend top-k items for users or a history, in raw ids, from a run id or job folder
  datasets  list dataset configs and where their files are looked for
  audit     leakage audit of a dataset and split (training data after the test target, repeats, ...)
  hypothesis run FILE / show FILE: a pre-registered hypothesis (hypotheses/*.yaml) run to a verdict

examples:
  recexp train model=sasrec                                    one run, sensible defaults
  recexp train model=sasrec dataset=beauty loss=bce           real data, another loss
  recexp train -m model=sasrec,pop seed=1,2                    a sweep: 4 runs, one MLflow parent run
  recexp train model=sasrec --cfg job                          print the composed config
  recexp train experiment=beauty_sasrec_ce                     a pinned preset behind a reported number
  recexp pretrain dataset=beauty                               S3Rec pre-training; prints the run id
  recexp train model=s3rec dataset=beauty model.pretrained=ID  fine-tune from it (runs linked in MLflow)
  recexp recommend RUN_ID --users 1 2 3 --k 10                 top-10 per user from a finished run

`recexp train --help` lists every config group and its options.
"""


def _groups_text() -> str:
    lines = ["config groups (pick with group=option):"]
    for group, options in group_choices().items():
        lines.append(f"  {group:<15} {', '.join(options) if options else '(none)'}")
    return "\n".join(lines)


def train_help() -> str:
    return (
        "usage: recexp train [-m] [key=value ...] [--cfg job] [--hydra-help]\n\n"
        "Train a model on a dataset and evaluate it (validation for early stopping, test once at\n"
        "the end); every run is recorded in MLflow (default store: runs/mlflow.db, see `make ui`).\n\n"
        f"{_groups_text()}\n\n"
        "top-level keys: seed, device=auto|cpu|cuda, hypothesis=\"...\", max_len, data_dir (or\n"
        "$RECEXP_DATA_DIR), optimized_metric, paths.runs_dir (or $RECEXP_RUNS_DIR)\n"
        "any nested key too: model.hidden_size=128 trainer.lr=3e-4 eval.mask_history=none\n\n"
        "  -m / --multirun   sweep over comma-separated values (a Hydra multirun)\n"
        "  --cfg job         print the composed config and exit\n"
        "  --hydra-help      Hydra's own flags\n"
        f"\nconfig directory: {conf_dir()}\n"
    )


def _run_train(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(train_help())
        return 0
    argv = ["--help" if a == "--hydra-help" else a for a in argv]
    from recexp.errors import ConfigError
    from recexp.overrides_check import check_overrides, job_config

    try:
        check_overrides(argv)  # typos: one line with the closest names
        if _asks_job_config(argv):  # the config as it will run: auto choices resolved
            print(job_config(argv), end="")
            return 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if (problem := check_runs_dir(argv) or compose_error(argv)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    import hydra

    from recexp.hydra_task import task

    sys.argv = ["recexp-train", *argv]
    main = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name=CONFIG_NAME)(task)
    main()
    return 0


def _asks_job_config(argv: list[str]) -> bool:
    """``--cfg job`` / ``-c job`` without a sweep and without Hydra's package selector."""
    for flag in ("--cfg", "-c"):
        if flag in argv and argv.index(flag) + 1 < len(argv) and argv[argv.index(flag) + 1] == "job":
            return not {"-m", "--multirun", "-p", "--package"} & set(argv)
    return False


def _run_pretrain(argv: list[str]) -> int:
    """``recexp pretrain``: the train config plus ``pretrain=s3rec`` and ``model=s3rec`` unless
    given (or set by an experiment preset)."""
    if any(a in ("-h", "--help") for a in argv):
        print("usage: recexp pretrain [-m] [key=value ...]\n\nPre-train S3Rec (AAP, MIP, MAP, SP) on the "
              "training split; the checkpoint is\nlogged as the MLflow artifact pretrained.pt. Keys: "
              "pretrain.epochs, pretrain.*_weight,\npretrain.drop=aap+map (ablation), pretrain.finetune=true "
              "(fine-tune in the same job).\n")
        print(train_help().split("\n\n", 1)[1])
        return 0
    given = {a.split("=", 1)[0].lstrip("+~") for a in argv if "=" in a}
    preset = "experiment" in given
    extra = [f"{k}=s3rec" for k in ("pretrain", "model") if k not in given and not preset]
    argv = ["--help" if a == "--hydra-help" else a for a in [*extra, *argv]]
    if (problem := check_runs_dir(argv) or compose_error(argv)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    import hydra

    from recexp.pretrain.run import task

    sys.argv = ["recexp-pretrain", *argv]
    main = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name=CONFIG_NAME)(task)
    main()
    return 0


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `kill`, a scheduler's preemption or `timeout` end a run like Ctrl-C: checkpoint kept, MLflow
    # run KILLED (the default SIGTERM action would leave it RUNNING forever)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        print(_groups_text())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "train":
        return _run_train(rest)
    if cmd == "pretrain":
        return _run_pretrain(rest)
    if cmd == "compare":
        from recexp.compare import main as compare_main

        return compare_main(rest)
    if cmd == "results":
        from recexp.tracking.results import main as results_main

        return results_main(rest)
    if cmd == "evaluate":
        from recexp.evaluate_cmd import main as evaluate_main

        return evaluate_main(rest)
    if cmd == "recommend":
        from recexp.recommend_cmd import main as recommend_main

        return recommend_main(rest)
    if cmd == "datasets":
        from recexp.datasets_cmd import main as datasets_main

        return datasets_main(rest)
    if cmd in ("audit", "hypothesis"):
        from importlib import import_module

        return import_module("recexp.audit_cmd" if cmd == "audit" else "recexp.hypothesis").main(rest)
    print(f"recexp: unknown command {cmd!r} (expected train, pretrain, compare, results, evaluate, recommend, datasets, "
          "audit or hypothesis)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
