"""What a sweep tells its user: which job did what (trained, or skipped because an identical
config already FINISHED), one summary table at the end, and the command that compares it.

A skipped job reuses a FINISHED run that may belong to another sweep (or to none): that run gets
one tag per sweep that reused it (``recexp.in_sweep.<sweep id>``), never a moved ``sweep_id``, so
``recexp compare --sweep <id>`` and the parent's job count see every job of the sweep.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rich.table import Table
from rich.text import Text

from recexp.record import tag
from recexp.runtime.terminal import compact

IN_SWEEP = tag.IN_SWEEP_PREFIX  # + sweep id: a FINISHED run an identical job of that sweep reused


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
