"""``recexp compare``: group tracked runs by what varies, summarise over seeds, and judge each
group against a baseline with the one verdict engine ``recexp hypothesis`` uses (seed and user
variance, paired by user id, Holm): supported / refuted / inconclusive, ending in ``verdict: ...``.
On the runs of a registered hypothesis it judges them as that file says.

    recexp compare --experiment ml100k-ce-vs-bce --baseline loss=bce
    recexp compare --sweep 3f2a... --metrics test/ndcg_10 test/hr_10 --alpha 0.01
    recexp compare --filter "params.dataset.name = 'ml-100k'"
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from rich.markup import escape

from recexp.errors import UserError
from recexp.record import tag

DEFAULT_METRICS = ["test/ndcg_10", "test/hr_10", "test/mrr_10", "test/coverage_10", "test/novelty_10"]
REPEAT_METRICS = ["test/repeat_share", "test/repeat/ndcg_10", "test/explore/ndcg_10"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recexp compare", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sel = p.add_argument_group("which runs (combined with AND; default: every finished run in the store)")
    sel.add_argument("--experiment", "-e", help="MLflow experiment name (or id)")
    sel.add_argument("--sweep", "-s", help="a sweep id (tag recexp.sweep_id, shown on the sweep's parent run)")
    sel.add_argument("--filter", "-f", dest="filter_string",
                     help="an MLflow filter, e.g. \"params.`trainer.lr` = '0.001' and tags.`recexp.dataset` = 'ml-100k'\"")
    p.add_argument("--metrics", "-m", nargs="+", help=f"metrics for the table (default: those of {DEFAULT_METRICS} present)")
    p.add_argument("--test-metric", "-t", default=None,
                   help="per-user metric for the paired tests (default: the first of --metrics, e.g. ndcg_10)")
    p.add_argument("--baseline", "-b", nargs="+", default=[], metavar="KEY=VALUE",
                   help="the baseline group by option name, e.g. loss=bce or model=pop (default: the first group)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--direction", choices=("two-sided", "greater", "less"), default="two-sided",
                   help="the claim: each group differs from (two-sided), beats (greater) or trails (less) the baseline")
    p.add_argument("--smallest-effect", type=float, default=0.0,
                   help="the smallest difference that matters, in metric units (default 0; printed with the verdict)")
    p.add_argument("--allow-few-seeds", action="store_true",
                   help="judge groups with fewer than 3 seeds (the seed variance is then assumed, and said)")
    p.add_argument("--hypothesis", default=None,
                   help="the hypothesis under test (default: the runs' recexp.analysis.hypothesis tag, from hypothesis=...)")
    p.add_argument("--curve", default=None, help="metric for the validation-curve plot (default: valid/<test metric>)")
    p.add_argument("--out", "-o", type=Path, default=None, help="output folder (default: <runs>/compare/<time>)")
    p.add_argument("--uri", default=None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else <runs>/mlflow.db)")
    p.add_argument("--no-log", action="store_true", help="do not record the comparison as an MLflow run")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keeps errors to one line
    from recexp.analysis.compare.report import console

    con = console()
    try:
        run(args, con)
    except UserError as exc:
        print(f"recexp compare: error: {exc}", file=sys.stderr)
        return 2
    return 0


def run(args: argparse.Namespace, con) -> dict:
    from recexp.analysis import query
    from recexp.analysis.compare import grouping as an
    from recexp.errors import ConfigError
    from recexp.record.store import runs_dir, tracking_uri

    if not 0 < args.alpha < 1:
        raise ConfigError(f"--alpha {args.alpha}: expected a value in (0, 1)")
    uri = tracking_uri(args.uri)
    runs = query.select_runs(uri, args.experiment, args.sweep, args.filter_string)
    h = registered_hypothesis(uri, runs)
    if h is not None:  # the runs of a registered hypothesis are judged as its file says, by the same code
        from recexp.analysis.hypothesis.analysis import analyse, text

        con.print(f"{len(runs)} runs of the registered hypothesis {escape(h.name)} ({escape(str(h.path))}): judged "
                  "with its metric, baseline, direction, smallest effect and alpha, as `recexp hypothesis show`")
        v = analyse(h, uri, with_curves=False)
        for line in text(v).splitlines():
            con.print(escape(line), soft_wrap=True, highlight=False)
        return {"verdict": v.overall, "hypothesis": h.name}
    out = args.out or runs_dir() / "compare" / dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    parts: dict[str, list] = {}
    for r in runs:
        parts.setdefault(an.partition_key(r), []).append(r)
    if len(parts) == 1:
        return _compare(args, con, uri, runs, out)
    # runs of several datasets / protocols are never paired with each other: one comparison each
    con.print(f"{len(runs)} runs on {len(parts)} datasets/protocols, compared separately: "
              f"{escape('; '.join(f'{k} ({len(v)} runs)' for k, v in parts.items()))}")
    results = []
    for i, (key, part) in enumerate(parts.items(), 1):
        con.rule(escape(key))
        try:
            results.append({"part": key, **_compare(args, con, uri, part, out / f"{i}")})
        except UserError as exc:  # e.g. one configuration only on this dataset: say so, go on
            con.print(f"{escape(key)}: skipped: {escape(str(exc))}")
            results.append({"part": key, "error": str(exc)})
    if all("error" in r for r in results):
        raise UserError(f"no dataset/protocol has two configurations to compare ({'; '.join(parts)}); "
                        "select runs with --experiment, --sweep or --filter")
    return {"out": str(out), "parts": results}


def registered_hypothesis(uri: str, runs: list):
    """The hypothesis file whose sweep made every one of ``runs`` (its registration run names it,
    and keeps the registered text as an artifact), or None."""
    from recexp.analysis.hypothesis import spec
    from recexp.analysis.hypothesis.runner import REGISTRATION, ROLE_TAG
    from recexp.analysis.query import mlflow_client

    names = {r.tags.get(tag.HYPOTHESIS_NAME, "") for r in runs}
    if len(names) != 1 or "" in names:
        return None
    client = mlflow_client(uri)
    regs = client.search_runs([runs[0].experiment_id], f"tags.`{ROLE_TAG}` = '{REGISTRATION}'", max_results=1)
    if not regs:
        return None
    path = Path(regs[0].data.tags.get(tag.HYPOTHESIS_FILE, ""))
    if not path.is_file():  # another checkout: the registered text itself
        import tempfile

        path = Path(client.download_artifacts(regs[0].info.run_id, path.name, tempfile.mkdtemp()))
    return spec.load(path)


def _shown(uri: str) -> str:
    """A local store below the working directory is shown relative to it (no machine paths)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        path = Path(uri[len(prefix):])
        if path.is_relative_to(Path.cwd()):
            return prefix + str(path.relative_to(Path.cwd()))
    return uri


def _compare(args: argparse.Namespace, con, uri: str, runs: list, out: Path) -> dict:
    from recexp.analysis import query
    from recexp.analysis.compare import grouping as an
    from recexp.analysis.compare import report as rp
    from recexp.errors import ConfigError

    groups = an.group_runs(runs)
    present = {k for r in runs for k in r.metrics}
    metrics = args.metrics or [m for m in DEFAULT_METRICS if m in present]
    if not args.metrics and any(r.metrics.get("test/repeat_share", 0) > 0 for r in runs):
        # targets that repeat the history: their figures beside the others' (repeat / explore)
        metrics += [m for m in REPEAT_METRICS if m in present]
    missing = [m for m in metrics if m not in present]
    if missing or not metrics:
        raise ConfigError(f"--metrics: {', '.join(missing) or 'none'} not logged by the selected runs "
                          f"(e.g. {', '.join(sorted(k for k in present if k.startswith('test/'))[:6])})")
    column = (args.test_metric or metrics[0]).removeprefix("test/")
    baseline = an.find_baseline(groups, args.baseline)
    summary = an.summary_table(groups, metrics)

    from recexp.analysis import judge

    if not args.smallest_effect >= 0:
        raise ConfigError(f"--smallest-effect {args.smallest_effect}: expected >= 0 (--direction gives the sign)")
    arms = [judge.recorded_arm(uri, g.label, g.runs, column) for g in groups]
    others = [a for i, a in enumerate(arms) if i != baseline]
    result = judge.judge(arms[baseline], others, direction=args.direction, alpha=args.alpha,
                         smallest_effect=args.smallest_effect, allow_few_seeds=args.allow_few_seeds)
    tests = an.verdict_table(result)
    hyps = sorted({r.tags.get(tag.HYPOTHESIS, "") for r in runs} - {""})
    hypothesis = args.hypothesis or " | ".join(hyps)
    verdict = result.overall
    seeds = sorted({s for a in arms for s in a.seeds})
    lines = [judge.header(column, result, arms[baseline].arm.values.shape[1], str(seeds), arms[baseline].examples),
             *judge.rows(arms[baseline], others, result)]

    con.print(f"{len(runs)} runs in {len(groups)} groups "
              f"(by {', '.join(groups[0].key)}; seed averaged over) from {escape(_shown(uri))}")
    con.print(rp.rich_summary(summary, metrics, baseline))
    if hypothesis:
        con.print(f"hypothesis: {escape(hypothesis)}")
    for line in lines:
        con.print(escape(line), soft_wrap=True, highlight=False)

    curve_key = args.curve or f"valid/{column}"
    curves = {g.label: [(r.params.get("seed", "?"),
                         [(s, v) for s, v in query.metric_history(uri, r.run_id, curve_key)
                          if s <= r.metrics.get("epochs_run", float("inf")) or s == 0])  # drop the best-epoch echo
                        for r in g.runs] for g in groups}
    files = rp.write(out, summary, metrics, groups, baseline, arms, result, column, curves, curve_key, hypothesis, lines)
    tests.to_csv(out / "tests.csv", index=False)
    files.insert(1, out / "tests.csv")
    done = {"out": str(out), "verdict": verdict, "groups": [g.label for g in groups]}
    if not args.no_log:
        rid = query.log_comparison(
            uri, runs[0].experiment_id, f"compare-{column}-{len(groups)}groups",
            {"baseline": groups[baseline].label, "test_metric": column, "alpha": args.alpha,
             "runs": len(runs), "selection": json.dumps({"experiment": args.experiment, "sweep": args.sweep,
                                                         "filter": args.filter_string})},
            {tag.HYPOTHESIS: hypothesis, tag.VERDICT: verdict,
             tag.NOTE: (out / "comparison.md").read_text()}, files)
        done["run_id"] = rid
        con.print(f"logged as MLflow run {rid}")
    con.print(f"wrote {escape(str(out))}: {', '.join(f.name for f in files)} (each figure as PDF, PNG and the CSV "
              "it plots)", soft_wrap=True)
    return done
