"""``recexp recommend RUN_ID|JOB_DIR``: the top-k of a trained model in raw user and item ids.

Without ``--users``/``--users-file``/``--history``: every user the model knows, in batches on the
device. ``--history "i1 i2"`` alone: an anonymous history; with users: items appended to each
user's latest history. Items already in the history are left out unless ``--keep-history``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from recexp.errors import ConfigError, UserError

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="recexp recommend", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", metavar="RUN_ID|JOB_DIR",
                    help="an MLflow run id (its artifact 'model'), a job folder, or a model folder")
    ap.add_argument("--users", nargs="+", default=None, help="raw user ids (spaces or commas)")
    ap.add_argument("--users-file", type=Path, default=None, help="a file of raw user ids, one per line")
    ap.add_argument("--k", type=int, default=10, help="items per user (default 10)")
    ap.add_argument("--history", default=None, help='raw item ids, e.g. "50 172 133"')
    ap.add_argument("--keep-history", action="store_true", help="may recommend items already in the history")
    ap.add_argument("--out", type=Path, default=None, help="write F.csv or F.parquet instead of printing CSV")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    ap.add_argument("--batch-size", type=int, default=1024, help="users scored at once")
    ap.add_argument("--tracking-uri", default=None, help="MLflow store for RUN_ID (default: $MLFLOW_TRACKING_URI, "
                    "else runs/mlflow.db)")
    return ap


def resolve_source(source: str, tracking_uri: str | None = None) -> Path:
    """A local folder, or the ``model`` artifact of MLflow run ``source``."""
    p = Path(source).expanduser()
    if p.exists():
        return p
    if not _RUN_ID.match(source):
        raise ConfigError(f"{source}: no such folder, and not an MLflow run id (32 hex digits)")
    from recexp.record.artifacts import download

    return download(source, "model", tracking_uri, key="RUN_ID",
                    hint="a run that did not finish, or one logged before models were logged")


def read_users(args: argparse.Namespace) -> list[str] | None:
    users: list[str] = []
    for u in args.users or []:
        users += [x for x in u.split(",") if x]
    if args.users_file is not None:
        try:
            users += [ln.strip() for ln in args.users_file.read_text().splitlines() if ln.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--users-file {args.users_file}: cannot read it ({exc.strerror or exc})") from None
    return users if (args.users is not None or args.users_file is not None) else None


def check_options(args: argparse.Namespace) -> list[str] | None:
    """Every option checked before the model is loaded; returns the users asked for (None: all)."""
    if args.k < 1:
        raise ConfigError(f"--k={args.k}: must be at least 1")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size={args.batch_size}: must be at least 1")
    if args.out is not None and args.out.suffix not in (".csv", ".parquet"):
        raise ConfigError(f"--out {args.out}: expected a .csv or .parquet file name")
    if args.out is not None and args.out.is_dir():
        raise ConfigError(f"--out {args.out}: is a folder; give a file name ending in .csv or .parquet")
    if args.history is not None and not args.history.replace(",", " ").split():
        raise ConfigError(f"--history {args.history!r}: no item id in it")
    users = read_users(args)
    if users is not None and not users:  # --users "" or an empty --users-file: not "every user"
        given = f"--users-file {args.users_file}" if args.users_file is not None else f"--users {' '.join(args.users)!r}"
        raise ConfigError(f"{given}: no user id given (leave the option out for every user)")
    return users


def recommend(args: argparse.Namespace):  # noqa: ANN201 (a pandas DataFrame; pandas is imported lazily)
    from recexp.serving.bundle import load
    from recexp.serving.recommend import Recommender
    from recexp.training.parts import resolve_device

    users = check_options(args)
    rec = Recommender(load(resolve_source(args.source, args.tracking_uri), resolve_device(args.device)))
    if args.history is not None and users is None:
        return rec.for_histories([args.history.replace(",", " ").split()], args.k, args.keep_history,
                                 labels=[""], batch_size=args.batch_size)
    extra = args.history.replace(",", " ").split() if args.history is not None else []
    return rec.for_users(users, args.k, extra, args.keep_history, args.batch_size)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        top = recommend(args)
    except UserError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return 2
    if args.out is None:
        top.to_csv(sys.stdout, index=False, float_format="%.6g")
        return 0
    try:  # a missing folder is made, as for `recexp results --out`
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.out.suffix == ".csv":
            top.to_csv(args.out, index=False)
        else:
            top.to_parquet(args.out, index=False)
    except OSError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] --out {escape(str(args.out))}: cannot write it "
                                   f"({escape(exc.strerror or str(exc))})", soft_wrap=True)
        return 2
    print(f"{len(top)} recommendations for {top['user'].nunique()} users -> {args.out}", file=sys.stderr)
    return 0
