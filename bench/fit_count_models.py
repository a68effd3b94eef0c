"""Wall-clock fit time of the count-based models (issue 3: "fit Beauty in seconds").

    RECEXP_DATA_DIR=/work/shared/datasets python bench/fit_count_models.py dataset=beauty

Prepares the split once (cached), then times ``model.fit(data)`` alone and one full-ranking
pass over the validation users, per model. Extra arguments are Hydra overrides.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from recexp.config.compose import conf_dir
from recexp.data.batches import EvalBatches
from recexp.data.prepare import prepare
from recexp.errors import UserError

MODELS = ["pop", "markov", "itemknn_tw", "recent_pop"]


def main(overrides: list[str]) -> None:
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        base = compose(config_name="train", overrides=overrides)
    data = prepare(OmegaConf.to_container(base.dataset, resolve=True), OmegaConf.to_container(base.split, resolve=True),
                   instantiate(base.split), Path(str(base.data_dir)).expanduser(), Path(str(base.paths.cache_dir)))
    device = torch.device("cpu")
    print(f"{base.dataset.name}: {data.num_users} users, {data.num_items} items, "
          f"{len(data.train.items)} training interactions, torch threads {torch.get_num_threads()}")
    for name in MODELS:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose(config_name="train", overrides=[*overrides, f"model={name}"])
        model = instantiate(cfg.model, num_items=data.num_items, num_users=data.num_users).to(device)
        t0 = time.perf_counter()
        try:
            model.fit(data)
        except UserError as exc:
            print(f"{name:12s} not fit: {exc}")
            continue
        fit_s = time.perf_counter() - t0
        evaluator = instantiate(cfg.eval)
        t1 = time.perf_counter()
        metrics, _ = evaluator.evaluate(model, EvalBatches(data.valid, int(cfg.max_len), device))
        print(f"{name:12s} fit {fit_s:6.2f} s   valid full-ranking eval {time.perf_counter() - t1:6.2f} s   "
              f"valid ndcg_10 {metrics['ndcg_10']:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
