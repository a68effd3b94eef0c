"""``recexp ui``: the MLflow UI over the project's store on 127.0.0.1; prints the address of the
runs of the experiment trained last, in recexp's landing view (docs/ui.md), and opens nothing."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from recexp.errors import UserError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recexp ui", description=__doc__)
    p.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
    p.add_argument("--uri", default=None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else <runs>/mlflow.db)")
    p.add_argument("--experiment", "-e", default=None, help="land on this experiment (default: the one trained last)")
    p.add_argument("--print-url", action="store_true", help="print the landing address and exit (no server)")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from recexp.record import ui_server
    from recexp.record.store import runs_dir, tracking_uri

    try:
        uri = tracking_uri(args.uri)
        base = ui_server.base_for(args.port)
        url = ui_server.landing(uri, base, args.experiment)
        if args.print_url:
            print(url)
            return 0
        log = runs_dir() / "mlflow-ui.log"
        proc = ui_server.start(uri, args.port, log)
        try:
            ui_server.wait_healthy(base, proc, log)
            print(f"MLflow UI over {uri}\n{url}\n(Ctrl-C stops it; server log: {_shown(log)})", flush=True)
            return proc.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
    except UserError as exc:
        print(f"recexp ui: error: {exc}", file=sys.stderr)
        return 2


def _shown(path: Path) -> str:
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)
