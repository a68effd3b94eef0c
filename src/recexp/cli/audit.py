"""``recexp audit [key=value ...]``: the leakage audit of a dataset and split (same overrides as
``recexp train``: ``dataset=ml-100k split=temporal``). Prints the figures; ``--json`` for machines."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from recexp.errors import UserError


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print("usage: recexp audit [--json] [dataset=NAME split=loo|temporal|session key=value ...]\n\n"
              "Leakage audit of the split a run with these overrides would use: share of training data\n"
              "after each user's test target on the global timeline (median, mean, users above 10%),\n"
              "test targets repeating a history item, test items unseen in training, duplicates, and\n"
              "whether the evaluation's candidate set can depend on the label (eval.mask_history).\n"
              "Every training run records the same figures as its `recexp.audit` tag.")
        return 0
    as_json = "--json" in argv
    overrides = [a for a in argv if a != "--json"]
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from recexp.config.compose import CONFIG_NAME, conf_dir
    from recexp.data.audit import audit, candidates, render
    from recexp.data.prepare import prepare

    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose(config_name=CONFIG_NAME, overrides=overrides)
        data = prepare(OmegaConf.to_container(cfg.dataset, resolve=True),
                       OmegaConf.to_container(cfg.split, resolve=True), instantiate(cfg.split),
                       Path(str(cfg.data_dir)).expanduser(), Path(str(cfg.paths.cache_dir)))
    except (UserError, HydraException) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    fig = audit(data, real_time=str(cfg.dataset.get("format", "")) != "seqtxt")
    fig |= candidates(OmegaConf.select(cfg, "eval.mask_history", default="all"), float(fig["target_repeats_history"]))
    if as_json:
        print(json.dumps(fig, indent=2))
    else:
        split = OmegaConf.select(cfg, "split._target_", default="?").rsplit(".", 1)[-1]
        print(render(fig, f"audit: dataset={cfg.dataset.name} split={split} ({data.num_users:,} users, "
                          f"{data.num_items:,} items)"))
    return 0
