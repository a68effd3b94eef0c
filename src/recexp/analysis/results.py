"""``recexp results``: the results tables rebuilt from the MLflow store, never typed by hand.

One row per setting (dataset, model, loss, sampler, preset and every other config value except
the seed); its seeds are averaged: mean ± sample standard deviation of test HR/NDCG@10 over the
seeds, the best validation epoch, the median training-epoch time.

    recexp results --experiment issue16 --out tables.md

The MLflow store lives under ``runs/`` (not in git), so a results document that must survive a new
checkout keeps the runs it was built from as records: ``--records FILE`` (JSON lines: each run's
id, experiment, params, recexp tags, final metrics and per-epoch times, copied from the store) is
merged with the store's runs (the store wins for the same run id) and ``--save-records`` writes the
merged set back. ``--targets FILE`` (YAML: per dataset ``ndcg_10``, ``hr_10``, ``published``) adds a
line per dataset saying whether the best setting meets its target, and by how much it misses.

    recexp results --experiment best --records docs/results/runs.jsonl --save-records   # store -> records
    recexp results --records docs/results/runs.jsonl --records-only --targets docs/results/targets.yaml \
        --out docs/results.md                                                          # records -> docs
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from recexp.analysis.records import load_records, merge, rows_from_records, save_records, store_runs
from recexp.analysis.settings import (
    Row,
    best_preset_name,
    best_preset_of,
    mean_spread,
    preset_cell,
    preset_now,
    preset_params,
)
from recexp.analysis.summary import render_summary
from recexp.analysis.targets import load_targets
from recexp.errors import UserError


def differing(rows: list[Row]) -> dict[int, str]:
    """For rows that share dataset, protocol, model, loss, sampler and preset, the params that tell
    them apart (``trainer.lr=0.01``), keyed by row index; other rows get nothing. The group's
    reference row (the most seeds, then the best) shows its value of every key that varies in the
    group; each other row only the keys where it differs from the reference."""
    same: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        same[(r.dataset, r.protocol, r.model, r.loss, r.sampler, r.preset)].append(i)
    notes: dict[int, str] = {}
    for idx in (v for v in same.values() if len(v) > 1):
        ref = max(idx, key=lambda i: (len(rows[i].seeds), statistics.fmean(rows[i].ndcg)))
        base = rows[ref].params
        varying = sorted({k for i in idx for k in rows[i].params}
                         - {k for k in base if all(rows[i].params.get(k) == base[k] for i in idx)})
        for i in idx:
            keys = varying if i == ref else [k for k in varying if rows[i].params.get(k) != base.get(k)]
            # (unset): the run did not record the key (runs made before it existed)
            notes[i] = " ".join(f"{k}={rows[i].params.get(k, '(unset)')}" for k in keys)
    return notes


def _mean(xs: list[float]) -> str:
    return f"{statistics.fmean(xs):.4f}" if xs else "-"


def _trained(r: Row) -> bool:
    return any(e != 0 for e in r.best_epochs) or bool(r.epoch_s)


def _setting(r: Row) -> str:
    return (f"{r.model} + {r.loss}" if _trained(r) else r.model) + (f" (`experiment={r.preset}`)" if r.preset else "")


def target_line(rows: list[Row], target: dict) -> str:
    """Whether the best setting meets ``target`` (``ndcg_10``, ``hr_10``; either may be missing),
    stated with its seeds. The best setting is chosen on mean *validation* NDCG@10, never on test.
    The targets ask for a mean of 3 seeds, so trained rows with 3 or more compete when there are
    any (a single seed at the top of a long table is the luckiest of many draws); count models,
    whose fit has no seed, always compete. A row higher on validation left out is named."""
    top = max(rows, key=lambda r: r.selection)
    full = [r for r in rows if len(r.seeds) >= 3 or not _trained(r)]
    best = max(full, key=lambda r: r.selection) if full else top
    n, h = statistics.fmean(best.ndcg), statistics.fmean(best.hr)
    parts = []
    for name, value, want in (("NDCG@10", n, target.get("ndcg_10")), ("HR@10", h, target.get("hr_10"))):
        if want is None:
            continue
        verdict = "met" if value >= want else f"missed by {want - value:.4f} ({(want - value) / want:.1%})"
        parts.append(f"{name} {value:.4f} vs target >= {want:g}: {verdict}")
    seeds = len(best.seeds)
    pub = f" Strongest published: {target['published']}." if target.get("published") else ""
    if not _trained(best):
        runs, few = "one fit (a count model: no seed)", ""
    else:
        runs = f"mean of {seeds} seed(s)"
        few = "" if seeds >= 3 else f" Only {seeds} seed{'s' if seeds > 1 else ''}: the target asks for 3."
    if top is not best and top.selection > best.selection:
        few += (f" Higher on validation with fewer seeds, not counted: {_setting(top)}, test "
                f"{statistics.fmean(top.ndcg):.4f} over {len(top.seeds)} seed(s).")
    where = _setting(best)
    if best.preset and (now := preset_now(best)) != best.preset:
        if now is not None:  # run as another preset + overrides that a preset composes to now: name that one
            where = where.replace(f"`experiment={best.preset}`",
                                  f"`experiment={now}`; run as `experiment={best.preset}` with overrides")
        else:  # the preset was changed after these runs
            where += " as it was when run (that preset composes to another setting now)"
    elif best.preset and (headline := best_preset_of(best)) not in (None, best.preset):
        # the runs' own preset still composes to them, and so does the dataset's _best: name the headline
        where = where.replace(f"`experiment={best.preset}`", f"`experiment={headline}`, the same as "
                                                             f"`experiment={best.preset}`")
    return (f"**Target.** Best setting on validation {where}, {runs}: {'; '.join(parts)}."
            f"{pub}{few}")


def shown_row(mine: list[Row]) -> tuple[Row, bool]:
    """A model's leading row (``mine``: best first) with 3+ seeds or a count model, else its leader."""
    full = [r for r in mine if len(r.seeds) >= 3 or not _trained(r)]
    return (full[0] if full else mine[0]), bool(full)


def per_model(rows: list[Row], published: dict[str, str]) -> list[str]:
    """One row per model of one dataset's table: its setting that leads on validation among those
    with 3 or more seeds (count models, whose fit has no seed, always qualify), else its leading
    setting, marked; its test NDCG@10 against the Markov count model's; the published figure."""
    by_model: dict[str, list[Row]] = defaultdict(list)
    for r in rows:  # ordered by validation, best first
        by_model[r.model].append(r)
    markov = next((r for r in rows if r.model == "Markov" and not _trained(r)), None)
    base = statistics.fmean(markov.ndcg) if markov else None
    out = ["| model | setting (leading on validation) | seeds | test NDCG@10 | vs Markov | published NDCG@10 (source) |",
           "|---|---|---|---|---|---|"]
    chosen = [(model, *shown_row(mine)) for model, mine in by_model.items()]
    for model, r, full in sorted(chosen, key=lambda c: -c[1].selection):
        n = statistics.fmean(r.ndcg)
        seeds = ",".join(map(str, r.seeds)) if _trained(r) else "- (count model)"
        seeds += "" if full else " (fewer than 3)"
        vs = "-" if base is None or r is markov else f"{n - base:+.4f} ({'at or above' if n >= base else 'below'})"
        name = f"{model} (count baseline)" if r is markov else model
        out.append(f"| {name} | {preset_cell(r)} | {seeds} | **{mean_spread(r.ndcg)}** | {vs} | "
                   f"{published.get(model, '-')} |")
    return out


def render(rows: list[Row], command: str, targets: dict | None = None) -> str:
    """Markdown: one table per dataset, best test NDCG@10 first."""
    out = [f"<!-- generated by `{command}`; do not edit by hand -->", ""]
    notes = differing(rows)
    for ds, protocol in sorted({(r.dataset, r.protocol) for r in rows}):
        out += [f"### {ds}" + (f" ({protocol})" if protocol else ""), ""]
        if targets and ds in targets and not protocol:
            out += [target_line([r for r in rows if r.dataset == ds and not r.protocol], targets[ds]), ""]
        members = [(i, r) for i, r in enumerate(rows) if r.dataset == ds and r.protocol == protocol]
        split = any(s > 0 for _, r in members for s in r.repeat_share)  # the repeat / explore columns
        published = ((targets or {}).get(ds) or {}).get("models") or {} if not protocol else {}
        if not protocol and len({r.model for _, r in members}) > 1:
            out += ["Per model:", "", *per_model([r for _, r in members], published), "", "Every setting:", ""]
        out += ["| model | loss | sampler (negatives) | preset | seeds | valid NDCG@10 | test HR@10 | test NDCG@10 | "
                + ("repeat share | NDCG@10 repeat / explore | " if split else "") + "best epoch | epoch s | min/run | "
                + ("published NDCG@10 (source) | " if published else "") + "differs |",
                "|---|---|---|---|---|---|---|---|" + ("---|---|" if split else "") + "---|---|---|"
                + ("---|" if published else "") + "---|"]
        for i, r in members:
            # count models have no epochs (best_epoch 0)
            best = "-" if all(e == 0 for e in r.best_epochs) else f"{statistics.fmean(r.best_epochs):g}"
            epoch = f"{statistics.median(r.epoch_s):.1f}" if r.epoch_s else "-"
            seeds = ",".join(map(str, r.seeds))
            loss = r.loss if _trained(r) else "-"  # count models: nothing trained
            valid = [v for v in r.valid if v == v]
            rep = (f"{statistics.fmean(r.repeat_share):.1%} | {_mean(r.repeat)} / {_mean(r.explore)} | "
                   if split else "")
            minutes = f"{statistics.fmean(r.minutes):.1f}" if r.minutes else "-"
            pub = f"{published.get(r.model, '-')} | " if published else ""
            name = f"{r.model} (count baseline)" if r.model == "Markov" else r.model  # the line to beat
            out.append(f"| {name} | {loss} | {r.sampler} | {preset_cell(r, moved='')} | {seeds} | "
                       f"{mean_spread(valid) if valid else '-'} | {mean_spread(r.hr)} | **{mean_spread(r.ndcg)}** | "
                       f"{rep}{best} | {epoch} | {minutes} | {pub}{notes.get(i, '')} |")
        out.append("")
    return "\n".join(out)


def learning_curves(rows: list[Row], records: list[dict], folder: Path) -> list[Path]:
    """Per dataset (the documents' protocol), each trained model's validation NDCG@10 by epoch, of
    the row ``per_model`` picks among those that kept a curve, every seed a thin line and their
    mean bold; the count Markov model's validation figure dashed. Returns the paths written."""
    import pandas as pd

    from recexp.analysis import figures

    curve = {r["run_id"]: r.get("curve") or [] for r in records}
    written: list[Path] = []
    for ds in sorted({r.dataset for r in rows if not r.protocol}):
        mine = [r for r in rows if r.dataset == ds and not r.protocol]
        drawn = [r for r in mine if any(curve.get(i) for i in r.run_ids)]  # best on validation first
        lead = {m: shown_row([r for r in drawn if r.model == m])[0] for m in dict.fromkeys(r.model for r in drawn)}
        if not lead:
            continue
        points = [{"group": f"{r.model} ({r.preset or r.loss})", "seed": seed, "epoch": int(e), "value": v}
                  for r in lead.values() for seed, i in zip(r.seeds, r.run_ids, strict=True)
                  for e, v in curve.get(i, [])]
        markov = next((r for r in mine if r.model == "Markov" and not _trained(r)), None)
        ref = (f"Markov (count, valid {markov.selection:.4f})", markov.selection) if markov else None
        written += figures.curves(pd.DataFrame(points, columns=["group", "seed", "epoch", "value"]), "valid/ndcg_10",
                                  folder / f"curves_{ds.replace('-', '')}", reference=ref,
                                  title=f"{ds}: valid NDCG@10 by epoch", figsize=(7.0, 4.6))
    return written


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recexp results", description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", "-e", nargs="+", default=None,
                   help="MLflow experiment names or ids (default: every experiment in the store)")
    p.add_argument("--filter", "-f", dest="filter_string", default=None, help="an MLflow filter string")
    p.add_argument("--out", "-o", type=Path, default=None, help="write the markdown here (default: stdout)")
    p.add_argument("--uri", default=None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else <runs>/mlflow.db)")
    p.add_argument("--records", type=Path, default=None,
                   help="JSON-lines run records merged with the store's runs (the store wins for one run id)")
    p.add_argument("--save-records", action="store_true", help="write the merged runs back to --records")
    p.add_argument("--records-only", action="store_true",
                   help="tables from --records alone, not merged with the local store (how the docs are rebuilt)")
    p.add_argument("--summary", action="store_true",
                   help="one row per dataset: its <dataset>_best preset (the README's headline table)")
    p.add_argument("--curves", type=Path, default=None, metavar="DIR",
                   help="also draw each dataset's learning curves (valid NDCG@10 by epoch, the Markov level "
                        "dashed) as DIR/curves_<dataset>.pdf/.png/.csv")
    p.add_argument("--targets", type=Path, default=None,
                   help="YAML: per dataset ndcg_10 / hr_10 / published; adds a met-or-missed line per dataset")
    return p

BEGIN, END = "<!-- recexp results: begin -->", "<!-- recexp results: end -->"


def splice(existing: str | None, tables: str) -> str:
    """The whole file is the tables, unless it already holds a BEGIN/END block: then only the
    block is replaced and the prose around it (protocol, what was tried) is kept."""
    if existing is None or BEGIN not in existing or END not in existing:
        return tables
    head, rest = existing.split(BEGIN, 1)
    return f"{head}{BEGIN}\n{tables}\n{END}{rest.split(END, 1)[1]}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from recexp.record.store import tracking_uri

    uri = tracking_uri(args.uri)
    shown = ["recexp results", *(["--experiment", *args.experiment] if args.experiment else []),
             *(["--filter", repr(args.filter_string)] if args.filter_string else []),
             *(["--records", str(args.records)] if args.records else []),
             *(["--save-records"] if args.save_records else []),
             *(["--records-only"] if args.records_only else []),
             *(["--summary"] if args.summary else []),
             *(["--targets", str(args.targets)] if args.targets else []),
             *(["--curves", str(args.curves)] if args.curves else []),
             *(["--out", str(args.out)] if args.out else [])]
    if (args.save_records or args.records_only) and not args.records:
        flag = "--save-records" if args.save_records else "--records-only"
        print(f"recexp results: error: {flag} needs --records FILE", file=sys.stderr)
        return 2
    if args.records and not args.records.exists() and not args.save_records:
        # only --save-records may start a new records file; reading one that is not there is a typo
        print(f"recexp results: error: --records {args.records}: no such file", file=sys.stderr)
        return 2
    try:
        targets = load_targets(args.targets) if args.targets else None  # a bad file: before any store is read
        saved = load_records(args.records) if args.records else []
        if args.experiment:  # the selection applies to saved records too
            saved = [r for r in saved if r.get("experiment") in args.experiment]
        has_store = not (uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file())
        use_store = not args.records_only and (has_store or not args.records)
        fresh = store_runs(uri, args.experiment, args.filter_string, bool(args.records)) if use_store else []
        records = merge(saved, fresh)
        rows = rows_from_records(records)
        if args.summary:
            settings = {ds: preset_params(best_preset_name(ds)) for ds in sorted({r.dataset for r in rows})}
            text = render_summary(rows, " ".join(shown), targets, settings)
        else:
            text = render(rows, " ".join(shown), targets)
        if args.save_records:
            save_records(args.records, merge(load_records(args.records), fresh))
        drawn = learning_curves(rows, records, args.curves) if args.curves else []
    except UserError as exc:
        print(f"recexp results: error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(splice(args.out.read_text() if args.out.exists() else None, text))
        print(f"wrote {args.out}")
    else:
        print(text)
    for f in drawn:
        if f.suffix == ".png":
            print(f"wrote {f.with_suffix('')}.{{pdf,png,csv}}")
    return 0
