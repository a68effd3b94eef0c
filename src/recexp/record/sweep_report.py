"""What a sweep tells its user: which job did what (trained, or skipped because an identical
config already FINISHED), one summary table at the end, and the command that compares it.

A skipped job reuses a FINISHED run that may belong to another sweep (or to none): that run gets
one tag per sweep that reused it (``recexp.in_sweep.<sweep id>``), never a moved ``sweep_id``, so
``recexp compare --sweep <id>`` and the parent's job count see every job of the sweep.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from recexp.record import tag
from recexp.runtime.terminal import compact

IN_SWEEP = tag.IN_SWEEP_PREFIX  # + sweep id: a FINISHED run an identical job of that sweep reused
FAILED_ENV = "RECEXP_SWEEP_FAILED_FILE"  # where this sweep's failed jobs write one line each


def job_info() -> dict[str, str]:
    """This Hydra job's number and overrides as tags ({} outside a multirun)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode != RunMode.MULTIRUN:
            return {}
        return {tag.JOB: str(hc.job.num), tag.OVERRIDES: " ".join(hc.overrides.task)}
    except ValueError:
        return {}


def attach_skipped(uri: str, run_id: str, sweep_id: str) -> None:
    """Record on the reused run that this sweep's job (number, overrides) took its result."""
    from mlflow.tracking import MlflowClient

    MlflowClient(uri).set_tag(run_id, f"{IN_SWEEP}{sweep_id}", json.dumps(job_info()))


def skipped_runs(client: Any, experiment_ids: list[str], sweep_id: str) -> list[Any]:
    """FINISHED runs that jobs of ``sweep_id`` reused instead of training again."""
    return client.search_runs(experiment_ids, f"tags.`{IN_SWEEP}{sweep_id}` != ''", max_results=5000)


def latest_per_job(children: list[Any]) -> list[Any]:
    """A rerun of a sweep continues its parent run: of the runs one job (its overrides) left under
    it, the newest is the job's outcome (a job that failed before and finished now is finished)."""
    latest: dict[str, Any] = {}
    for r in sorted(children, key=lambda r: r.info.start_time or 0):
        latest[r.data.tags.get(tag.OVERRIDES) or r.info.run_id] = r
    return list(latest.values())


def swept_only(overrides: list[str] | str, swept: list[str]) -> str:
    """The overrides of the swept keys (``loss=ce seed=2``): what tells a sweep's jobs apart (all
    of them when the swept keys are unknown)."""
    if isinstance(overrides, str):
        import shlex

        try:
            overrides = shlex.split(overrides)
        except ValueError:  # an unbalanced quote: words as they are
            overrides = overrides.split()
    keep = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in swept] if swept else list(overrides)
    return " ".join(keep)


def rows(children: list[Any], skipped: list[Any], sweep_id: str, metric: str,
         swept: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per job, in job order: job, overrides (of the swept keys), status, metric, trained/skipped."""
    out = []
    swept = swept or []
    for r in children:
        tags = r.data.tags
        out.append({"job": tags.get(tag.JOB, "?"),
                    "overrides": swept_only(tags.get(tag.OVERRIDES, r.info.run_name or ""), swept),
                    "status": r.info.status, "metric": r.data.metrics.get(metric, math.nan),
                    # a rerun of this sweep that skipped its own FINISHED job
                    "what": "skipped (already FINISHED)" if f"{IN_SWEEP}{sweep_id}" in tags else "trained",
                    "run": r.info.run_id})
    for r in skipped:
        info = json.loads(r.data.tags.get(f"{IN_SWEEP}{sweep_id}") or "{}")
        out.append({"job": info.get(tag.JOB, "?"), "overrides": swept_only(info.get(tag.OVERRIDES, ""), swept),
                    "status": r.info.status, "metric": r.data.metrics.get(metric, math.nan),
                    "what": f"skipped (reused {r.info.run_id[:8]})", "run": r.info.run_id})
    return sorted(out, key=lambda x: (int(x["job"]) if str(x["job"]).isdigit() else 10**9, x["overrides"]))


def table(job_rows: list[dict[str, Any]], metric: str, sweep_id: str) -> Table:
    t = Table(title=f"sweep {sweep_id}: {len(job_rows)} jobs")
    for c in ("job", "overrides", "status", metric, "trained/skipped"):
        t.add_column(c, justify="right" if c in ("job", metric) else "left")
    for r in job_rows:
        v = r["metric"]
        t.add_row(str(r["job"]), Text(r["overrides"]), r["status"], "—" if math.isnan(v) else f"{v:.4f}", r["what"])
    return t


def start_tally(runs_dir: str | Path) -> None:
    """A file the jobs of the starting sweep note their failures in (one JSON line each): what
    the sweep's exit status is decided from, with any launcher and any tracking backend."""
    folder = Path(runs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".sweep-failed-", suffix=".jsonl", dir=folder)
    os.close(fd)
    os.environ[FAILED_ENV] = str(Path(name).resolve())


def note_failed(reason: str) -> None:
    """Called by a failed job of a sweep (in the launcher's worker): one line in the tally."""
    name = os.environ.get(FAILED_ENV)
    if not name:
        return
    line = json.dumps({**job_info(), "reason": (reason.splitlines() or [""])[0][:500]}) + "\n"
    with open(name, "a", encoding="utf-8") as fh:  # one short append: parallel jobs do not interleave
        fh.write(line)


def end_tally() -> list[dict[str, str]]:
    """This sweep's failed jobs, in job order; the tally file is removed."""
    name = os.environ.pop(FAILED_ENV, None)
    if not name or not Path(name).is_file():
        return []
    lines = Path(name).read_text(encoding="utf-8").splitlines()
    Path(name).unlink(missing_ok=True)
    failed = [json.loads(ln) for ln in lines if ln.strip()]
    return sorted(failed, key=lambda f: int(f.get(tag.JOB, "0")) if str(f.get(tag.JOB, "")).isdigit() else 10**9)


def failed_line(failed: list[dict[str, str]]) -> str:
    """``2 jobs failed: #1 (seed=abc): <reason>; #3 (...): ...``"""
    jobs = "; ".join(f"#{f.get(tag.JOB, '?')} ({f.get(tag.OVERRIDES, '')}): {f['reason']}" for f in failed)
    return f"{len(failed)} job{'s' * (len(failed) > 1)} of the sweep failed: {jobs}"


def print_failed(failed: list[dict[str, str]]) -> None:
    if failed:
        from rich.console import Console

        Console(stderr=True).print(f"failed: {failed_line(failed)}", soft_wrap=True, markup=False, highlight=False)


def print_summary(children: list[Any], skipped: list[Any], sweep_id: str, metric: str, uri: str,
                  swept: list[str] | None = None, where: str = "") -> None:
    """The table, then the exact command that compares the sweep and the UI's address (stderr, like
    the jobs' output)."""
    import shlex

    from rich.console import Console

    from recexp.record.store import tracking_uri

    con = Console(stderr=True)
    job_rows = rows(children, skipped, sweep_id, metric, swept)
    if compact():  # its jobs said their line each: the count is enough
        what = [r["what"] if r["status"] == "FINISHED" else "failed" for r in job_rows]
        con.print(f"  sweep {sweep_id}: {len(job_rows)} jobs, {sum(w == 'trained' for w in what)} trained, "
                  f"{sum(w.startswith('skipped') for w in what)} skipped, {what.count('failed')} failed",
                  soft_wrap=True, markup=False, highlight=False)
        return
    con.print(table(job_rows, metric, sweep_id))
    uri_arg = "" if uri == tracking_uri(None) else f" --uri {shlex.quote(uri)}"
    con.print(f"compare it: recexp compare --sweep {sweep_id}{uri_arg}", soft_wrap=True, markup=False)
    if where:
        con.print(where, soft_wrap=True, markup=False, highlight=False)
