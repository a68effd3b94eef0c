"""Where a model loses between validation and test, next to another model (issue 31 diagnostic).

Evaluates each job's ``best.pt`` on the validation and test sets (its own config, full ranking as
the job ran) and breaks NDCG@10 down by how often an item occurs in the training sequences: the
query's last item (the one item a first-order Markov model reads) and the target. At test time the
query's last item is the validation item, so the two splits differ in exactly that position. A
third row, ``test_skip``, ranks the test target from the validation query (the validation item
dropped from what the model reads; it stays masked): a loss that persists there is about the target
one step further on, not about reading the validation item. A last table splits the users by
whether the query's (last item -> target) transition occurs anywhere in the training sequences: the
only users a first-order Markov count model can rank the target for. No MLflow run is recorded;
nothing in the job folders is written.

    OMP_NUM_THREADS=1 RECEXP_DATA_DIR=/path/to/datasets python bench/valid_test_gap.py \
        GRU4Rec=runs/single/<day>/<job> Markov=runs/single/<day>/<job>
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from recexp.data.batches import EvalBatches
from recexp.data.seqs import Seqs
from recexp.errors import UserError
from recexp.jobs.evaluate import load_job

EDGES = [0, 5, 10, 20, 50, 100, np.inf]
LABELS = ["<5", "5-9", "10-19", "20-49", "50-99", ">=100"]


def train_transitions(train: Seqs, num_items: int) -> np.ndarray:
    """The (a -> b) transitions of consecutive items in the training sequences, coded a * (N + 1) + b,
    sorted and unique."""
    nxt = np.ones(len(train.items), bool)
    nxt[train.offsets[:-1]] = False  # a sequence's first item follows nothing
    pos = np.flatnonzero(nxt)
    return np.unique(train.items[pos - 1] * (num_items + 1) + train.items[pos])


def per_user(job: Path) -> dict[str, pd.DataFrame]:
    """Per-user NDCG@10 on valid, test and ``test_skip`` (the test target from the validation
    query: the validation item dropped from what the model reads, still masked), each user's
    last-item / target training counts, and whether the (last item -> target) transition occurs in
    the training sequences."""
    cfg, p, _ = load_job(job, "cpu", require_checkpoint=False)  # a count model has no best.pt
    counts = np.bincount(p.data.train.items, minlength=p.data.num_items + 1)
    seen = train_transitions(p.data.train, p.data.num_items)
    frames = {}
    for split, src in (("valid", "valid"), ("test", "test"), ("test_skip", "test")):
        es = getattr(p.data, src)
        query = es.hist
        if split == "test_skip":  # the validation query (the validation item dropped), the test target
            query = query.select_positions(np.isin(np.arange(len(query.items)), query.offsets[1:] - 1,
                                                   invert=True))
        _, pu = p.evaluator.evaluate(p.model, EvalBatches(es, int(cfg.max_len), p.device, query=query),
                                     per_user=True)
        last = query.items[query.offsets[1:] - 1]
        by_user = pd.DataFrame({"user": es.hist.users, "last_count": counts[last],
                                "target_count": counts[es.targets],
                                "pair_seen": np.isin(last * (p.data.num_items + 1) + es.targets, seen)})
        frames[split] = pu[["user", "ndcg_10"]].merge(by_user, on="user", validate="one_to_one")
    return frames


def bucket_table(frames: dict[str, dict[str, pd.DataFrame]], by: str) -> str:
    rows = []
    for split in ("valid", "test", "test_skip"):
        some = next(iter(frames.values()))[split]
        share = pd.cut(some[by], EDGES, right=False, labels=LABELS).value_counts(normalize=True).reindex(LABELS)
        rows.append(f"| {split} | users | " + " | ".join(f"{s:.3f}" for s in share) + " | 1.000 |")
        for name, f in frames.items():
            d = f[split]
            g = d.groupby(pd.cut(d[by], EDGES, right=False, labels=LABELS), observed=False)["ndcg_10"].mean()
            rows.append(f"| {split} | {name} | " + " | ".join(f"{x:.4f}" for x in g.reindex(LABELS))
                        + f" | {d['ndcg_10'].mean():.4f} |")
    head = f"| split | NDCG@10 by train count of the {by.replace('_count', '')} item | " + " | ".join(LABELS) \
        + " | all |\n|" + "---|" * (len(LABELS) + 3)
    return head + "\n" + "\n".join(rows)


def pair_table(frames: dict[str, dict[str, pd.DataFrame]]) -> str:
    """NDCG@10 of the users whose (last item -> target) transition occurs in training and of the rest."""
    rows = ["| split | model | share of users with the transition seen | NDCG@10, seen | NDCG@10, unseen | all |",
            "|---|---|---|---|---|---|"]
    for split in ("valid", "test", "test_skip"):
        for name, f in frames.items():
            d = f[split]
            g = d.groupby("pair_seen")["ndcg_10"].mean()
            rows.append(f"| {split} | {name} | {d['pair_seen'].mean():.3f} | {g.get(True, np.nan):.4f} "
                        f"| {g.get(False, np.nan):.4f} | {d['ndcg_10'].mean():.4f} |")
    return "\n".join(rows)


def main(args: list[str]) -> None:
    if not args or any("=" not in a for a in args):
        sys.exit("usage: python bench/valid_test_gap.py NAME=JOB_DIR [NAME=JOB_DIR ...]")
    frames = {}
    for a in args:
        name, job = a.split("=", 1)
        try:
            frames[name] = per_user(Path(job))
        except UserError as exc:  # a folder that is not a job, a model that does not fit its best.pt
            sys.exit(f"error: {exc}")
    for by in ("last_count", "target_count"):
        print(bucket_table(frames, by), end="\n\n")
    print(pair_table(frames))


if __name__ == "__main__":
    main(sys.argv[1:])
