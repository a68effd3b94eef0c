"""Where a model loses between validation and test, next to another model (issue 31 diagnostic).

Evaluates each job's ``best.pt`` on the validation and test sets (its own config, full ranking as
the job ran) and breaks NDCG@10 down by how often an item occurs in the training sequences: the
query's last item (the one item a first-order Markov model reads) and the target. At test time the
query's last item is the validation item, so the two splits differ in exactly that position. A
third row, ``test_skip``, ranks the test target from the validation query (the validation item
dropped from what the model reads; it stays masked): a loss that persists there is about the target
one step further on, not about reading the validation item. No MLflow run is recorded; nothing in
the job folders is written.

    OMP_NUM_THREADS=1 RECEXP_DATA_DIR=/path/to/datasets python bench/valid_test_gap.py \
        GRU4Rec=runs/single/<day>/<job> Markov=runs/single/<day>/<job>
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from recexp.data.batches import EvalBatches
from recexp.errors import UserError
from recexp.jobs.evaluate import load_job

EDGES = [0, 5, 10, 20, 50, 100, np.inf]
LABELS = ["<5", "5-9", "10-19", "20-49", "50-99", ">=100"]


def per_user(job: Path) -> dict[str, pd.DataFrame]:
    """Per-user NDCG@10 on valid, test and ``test_skip`` (the test target from the validation
    query: the validation item dropped from what the model reads, still masked), and each user's
    last-item / target training counts."""
    cfg, p, _ = load_job(job, "cpu", require_checkpoint=False)  # a count model has no best.pt
    counts = np.bincount(p.data.train.items, minlength=p.data.num_items + 1)
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
                                "target_count": counts[es.targets]})
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


if __name__ == "__main__":
    main(sys.argv[1:])
