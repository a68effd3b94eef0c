"""Per-epoch valid NDCG@10 and how collapsed the item table is (issue 16, the gSASRec stall).

cos_to_mean: the item rows' mean cosine to the mean row (0 = no shared direction, 1 = every item
the same vector); mean/row: |mean row| / mean |row|; rownorm: mean |row|. Hydra overrides as
arguments; no MLflow run is recorded.

    OMP_NUM_THREADS=1 RECEXP_DATA_DIR=/path/to/datasets python bench/embedding_collapse.py \
        experiment=beauty_gsasrec sampler.num_negatives=16 trainer.max_epochs=4 loss.offset=0
    ITEM_STD=0.125 python bench/embedding_collapse.py ...   # item table re-initialised N(0, 0.125^2)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from recexp.config.compose import conf_dir
from recexp.data.prepare import prepare
from recexp.training.parts import build_loss_and_sampler, seed_everything


def collapse(model: torch.nn.Module) -> str:
    E = model.item_embeddings()[1:].detach()  # (N, D), padding row dropped
    m = E.mean(0)
    cos = torch.nn.functional.cosine_similarity(E, m.unsqueeze(0)).mean().item()
    return f"cos_to_mean {cos:.3f} mean/row {(m.norm() / E.norm(dim=1).mean()).item():.3f} " \
           f"rownorm {E.norm(dim=1).mean().item():.4f}"


def main(overrides: list[str]) -> None:
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["tracking=none", "device=cpu", "trainer.progress=false",
                                                      *overrides])
    seed_everything(int(cfg.seed))
    data = prepare(OmegaConf.to_container(cfg.dataset, resolve=True), OmegaConf.to_container(cfg.split, resolve=True),
                   instantiate(cfg.split), Path(str(cfg.data_dir)), Path(str(cfg.paths.cache_dir)))
    model = instantiate(cfg.model, num_items=data.num_items, num_users=data.num_users)
    if os.environ.get("ITEM_STD"):
        with torch.no_grad():
            model.item_emb.weight.normal_(0, float(os.environ["ITEM_STD"]))
            model.item_emb.weight[0].zero_()
    loss, sampler = build_loss_and_sampler(cfg, model)
    print("init", collapse(model), flush=True)
    t0 = time.time()

    def on_epoch(epoch: int, m: dict[str, float]) -> None:
        print(f"ep {epoch} loss {m['train/loss']:.4f} valid ndcg {m.get('valid/ndcg_10', float('nan')):.4f} "
              f"{collapse(model)} {time.time() - t0:.0f}s", flush=True)

    instantiate(cfg.trainer).fit(model, loss, sampler, data, instantiate(cfg.eval), int(cfg.max_len),
                                 torch.device("cpu"), seed=int(cfg.seed), on_epoch=on_epoch)


if __name__ == "__main__":
    main(sys.argv[1:])
