"""Leakage audit of a split: figures a reviewer can read before trusting a number.

Leave-one-out holds out each user's last item, but users' timelines end at different dates: the
model then trains on interactions that happened *after* a user's test target (on ml-100k, a large
share of the training data). The temporal split is the fix this audit points to. All figures are
O(interactions) numpy, cheap enough to run (and tag) in every run.
"""

from __future__ import annotations

import json

import numpy as np

from recexp.data.seqs import SplitData


def _repeats_history(ev) -> np.ndarray:
    """(E,) bool: the example's target occurs in its history."""
    n_items = int(max(ev.hist.items.max(initial=0), ev.targets.max(initial=0))) + 1
    ex_of = np.repeat(np.arange(len(ev.targets)), ev.hist.lengths)
    hist_keys = ex_of * n_items + ev.hist.items
    return np.isin(np.arange(len(ev.targets)) * n_items + ev.targets, hist_keys)


def audit(data: SplitData, real_time: bool = True) -> dict[str, float | str]:
    """Figures for ``data``'s test set. ``real_time``: timestamps are dates (False for the S3Rec
    files, whose 'times' are positions in each user's line: no global timeline exists)."""
    train, test = data.train, data.test
    n_train = max(len(train.items), 1)
    out: dict[str, float | str] = {"test_examples": float(len(test)), "train_interactions": float(len(train.items))}
    if real_time and len(test):
        t_sorted = np.sort(train.times)
        after = (len(t_sorted) - np.searchsorted(t_sorted, test.target_times, side="right")) / n_train
        # one figure per user (session splits have several test examples per user)
        users, inv = np.unique(test.hist.users, return_inverse=True)
        per_user = np.bincount(inv, weights=after) / np.bincount(inv)
        out |= {"after_target_median": float(np.median(per_user)), "after_target_mean": float(per_user.mean()),
                "users_above_10pct": float((per_user > 0.10).mean())}
    else:
        out["timeline"] = "positions only (no timestamps): training data after the target cannot be measured"
    out["target_repeats_history"] = float(_repeats_history(test).mean()) if len(test) else 0.0
    counts = data.item_counts()
    out["test_items_unseen_in_train"] = float((counts[test.targets] == 0).mean()) if len(test) else 0.0
    seq_of = np.repeat(np.arange(len(train.users)), train.lengths)
    ui = train.users[seq_of] * (data.num_items + 1) + train.items
    out["train_repeated_user_item"] = float(1 - len(np.unique(ui)) / n_train)
    uit = np.unique(np.stack([ui.astype(np.float64), train.times]), axis=1).shape[1]
    out["train_exact_duplicates"] = float(1 - uit / n_train)
    return out


def candidates(mask_history: object, repeat_share: float) -> dict[str, str]:
    """Whether the evaluation's candidate set can depend on the label: ``except_target`` (the old
    default: the history masked *except the test item*) does; ``all`` and ``none`` do not. With
    ``all`` the repeated targets are misses for every model: said, with their share."""
    if mask_history == "except_target":
        return {"candidates": "LABEL-DEPENDENT: eval.mask_history=except_target unmasks the test item, so a "
                              "repeated target competes only with unseen items (use all or none)"}
    if mask_history in ("all", True):
        note = (f"; {repeat_share:.2%} of test targets repeat the history and are misses for every model "
                "(mask_history=none ranks them)" if repeat_share else "")
        return {"candidates": f"label-independent: the whole history masked (mask_history=all){note}"}
    return {"candidates": "label-independent: nothing masked (mask_history=none)"}


def audit_json(data: SplitData, dataset_cfg) -> str:
    """The audit as compact JSON, a run tag (seqtxt files have positions, not dates)."""
    fig = audit(data, real_time=str(dataset_cfg.get("format", "")) != "seqtxt")
    return json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in fig.items()})


def render(fig: dict[str, float | str], title: str) -> str:
    """Plain-text lines for ``recexp audit``."""
    lines = [title]
    if "after_target_median" in fig:
        lines += [f"  training data after the user's test target (global timeline): median {fig['after_target_median']:.1%}, "
                  f"mean {fig['after_target_mean']:.1%}; users above 10%: {fig['users_above_10pct']:.1%}"]
    else:
        lines += [f"  training data after the test target: n/a, {fig['timeline']}"]
    lines += [f"  test targets repeating an item of the user's history: {fig['target_repeats_history']:.2%}",
              f"  test targets unseen in training: {fig['test_items_unseen_in_train']:.2%}",
              f"  training interactions repeating an earlier (user, item): {fig['train_repeated_user_item']:.2%}; "
              f"exact duplicates (user, item, time): {fig['train_exact_duplicates']:.2%}",
              *([f"  candidate set: {fig['candidates']}"] if "candidates" in fig else []),
              f"  ({int(fig['test_examples']):,} test examples, {int(fig['train_interactions']):,} training interactions)"]
    return "\n".join(lines)
