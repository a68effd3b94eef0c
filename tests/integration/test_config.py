"""Compose the real config for every option of every group, and instantiate what can be."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from recexp.config.compose import conf_dir, group_choices
from recexp.models.base import SeqRecModel
from recexp.training.parts import model_node
from tests.conftest import compose_cfg

CHOICES = group_choices()


def _missing_overrides(option: str) -> list[str]:
    """``group=name`` overrides of an experiment preset whose option file does not exist."""
    defaults = OmegaConf.load(conf_dir() / "experiment" / f"{option}.yaml").get("defaults") or []
    pairs = [(k.split("/")[-1], str(v)) for d in defaults if isinstance(d, DictConfig) for k, v in d.items()]
    return [f"{g}={n}" for g, n in pairs if not (conf_dir() / g / f"{n}.yaml").is_file()]


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in CHOICES.items()
                                          if g not in ("experiment", "hparams_search", "dataset_model")
                                          for o in opts])
def test_every_option_composes_and_instantiates(group: str, option: str):
    cfg = compose_cfg([f"{group}={option}"])
    node = cfg[group]
    assert node is not None
    if "_target_" not in node:
        return  # plain settings (dataset, tracking, auto choices)
    if group == "model":
        obj = instantiate(model_node(cfg), num_items=50, num_users=10)  # minus run keys (pretrained)
        assert isinstance(obj, SeqRecModel)
    else:
        obj = instantiate(node)
    assert obj is not None


@pytest.mark.parametrize("option", CHOICES.get("experiment", []))
def test_every_experiment_preset_composes(option: str):
    missing = _missing_overrides(option)
    if missing:  # a preset written ahead of its parts (gsasrec needs loss=gbce from issue 5)
        pytest.skip(f"experiment={option} needs {', '.join(missing)}, not in conf/ yet")
    cfg = compose_cfg([f"experiment={option}"])
    assert cfg.model._target_ and cfg.dataset.name


@pytest.mark.parametrize("preset,dataset", [("beauty_best", "beauty"), ("toys_best", "toys"),
                                            ("lastfm_best", "lastfm"), ("ml100k_best", "ml-100k")])
def test_best_preset_per_dataset_instantiates(preset: str, dataset: str):
    """Issue 16: `experiment=<dataset>_best` exists for every target dataset and builds its parts."""
    from recexp.training.parts import build_loss_and_sampler

    cfg = compose_cfg([f"experiment={preset}"])
    assert cfg.dataset.name == dataset and cfg.tracking.experiment == "best"
    model = instantiate(cfg.model, num_items=50, num_users=10)
    loss, sampler = build_loss_and_sampler(cfg, model)
    assert loss.requires in ("full", "sampled") and sampler is not None
    assert instantiate(cfg.trainer).max_epochs > 0


def test_same_as_presets_compose_to_the_best_presets_settings():
    """docs/results/targets.yaml lets the README summary count a preset's runs for <dataset>_best
    ("same_as"); that is only honest if both compose to the same config (tracking aside)."""
    from omegaconf import OmegaConf

    from tests.conftest import conf_dir

    targets = OmegaConf.to_container(OmegaConf.load(conf_dir().parent / "docs" / "results" / "targets.yaml"))
    pairs = [(f"{'ml100k' if ds == 'ml-100k' else ds}_best", other) for ds, t in targets.items()
             for other in t.get("same_as", [])]
    if not pairs:  # the README summary finds the best presets' runs by their settings since 2026-12-01
        pytest.skip("docs/results/targets.yaml names no same_as preset")
    for best, other in pairs:
        a, b = (OmegaConf.to_container(compose_cfg([f"experiment={p}"]), resolve=True) for p in (best, other))
        for c in (a, b):
            c.pop("tracking", None)
        assert a == b, (best, other)


# beauty_narm until 2026-12-07 (decoder dropout 0.5); toys_narm's first runs were made with it on Toys
NARM_FORMER = ["dataset=beauty", "model=narm", "loss=ce", "sampler=none", "max_len=50", "model.hidden_size=128",
               "model.embedding_size=128", "model.dropout_emb=0.6", "model.dropout_ct=0.5",
               "trainer.window_mode=prefixes", "trainer.batch_size=256", "trainer.lr=0.001",
               "trainer.max_epochs=200", "trainer.patience=10"]

MEASURED = {  # preset -> the overrides its reported runs were made with
    "beauty_sasrec_bce": ["experiment=beauty_loss_sampler", "loss=bce", "sampler=uniform", "sampler.exclude=history",
                          "trainer.max_epochs=400", "trainer.patience=20", "model.block=post_ln",
                          "model.init=normal", "model.emb_scale=false"],
    "beauty_sasrec_wide": ["experiment=beauty_sasrec_ce", "model.hidden_size=256", "model.num_blocks=1",
                           "model.num_heads=1", "model.dropout=0.5"],
    # toys_sasrec_wide's runs were `experiment=toys_best` of its former settings (now toys_sasrec_ce)
    # + overrides; toys_sasrec_wide_sce's (toys_best from 18:00 to 20:30 UTC) were that wide preset + loss=sce
    "toys_sasrec_wide": ["experiment=toys_sasrec_ce", "model.hidden_size=256", "model.num_blocks=1",
                         "model.num_heads=1"],
    "toys_sasrec_wide_sce": ["experiment=toys_sasrec_wide", "loss=sce"],
    # the best presets since 2026-12-01 20:30 UTC: d 64 on RecBole's windows
    "beauty_sasrec_prefixes": ["experiment=beauty_sasrec_ce", "trainer.window_mode=prefixes", "trainer.batch_size=256"],
    # beauty_best since 2026-12-06: BSARec (its seeds were run as beauty_bsarec; seed 0 as the preset's
    # former lr 1e-3 and prefix scope with the two overrides that became its values)
    "beauty_best": ["experiment=beauty_bsarec"],
    "toys_bsarec": ["experiment=beauty_bsarec", "dataset=toys"],
    "toys_sasrec_prefixes": ["experiment=toys_sasrec_ce", "trainer.window_mode=prefixes", "trainer.batch_size=256"],
    "toys_best": ["experiment=beauty_bsarec", "dataset=toys"],
    "toys_s3rec_finetune_ce": ["experiment=beauty_s3rec_finetune_ce", "dataset=toys"],  # its seed 0  # since 2026-12-06: BSARec
    # lastfm_sasrec_wide (lastfm_best until 2026-12-06): its 3 runs were the lastfm_best before it
    # (now lastfm_sasrec_ce) + width overrides
    "lastfm_sasrec_wide": ["experiment=lastfm_sasrec_ce", "model.block=pre_ln", "model.hidden_size=256", "model.num_blocks=1",
                    "model.num_heads=1", "model.dropout=0.5"],
    # lastfm_sasrec_prefixes (lastfm_best 2026-12-06 until BSARec led): the former lastfm_best
    # (lastfm_sasrec_wide) on one window per target
    "lastfm_sasrec_prefixes": ["experiment=lastfm_sasrec_wide", "trainer.window_mode=prefixes", "trainer.batch_size=256"],
    "lastfm_best": ["experiment=lastfm_tvrec"],  # since 2026-12-07 05:30: TV-Rec (BSARec before, lastfm_bsarec)
    # measured when beauty_best was the wide block (now beauty_sasrec_wide)
    "beauty_best_sce": ["experiment=beauty_sasrec_wide", "loss=sce"],
    "beauty_best_rece": ["experiment=beauty_sasrec_wide", "loss=rece"],
    # beauty_bert4rec_cloze (beauty_bert4rec 2026-12-06): its run was the former preset (cloze alone,
    # 30 epochs, patience 3) with the overrides that became its values
    "beauty_bert4rec_cloze": ["dataset=beauty", "model=bert4rec", "loss=ce", "sampler=none", "max_len=50",
                              "model.dropout=0.3", "model.mask_prob=0.4", "model.last_prob=0.5",
                              "trainer.window_mode=prefixes", "trainer.max_epochs=200", "trainer.batch_size=256",
                              "trainer.lr=0.003", "trainer.patience=10"],
    # beauty_bert4rec_preln / toys_bert4rec_preln (beauty_bert4rec / toys_bert4rec from 2026-12-07 01:00):
    # their runs were the cloze preset (then named beauty_bert4rec / toys_bert4rec) with the newest item alone masked
    "beauty_bert4rec_preln": ["experiment=beauty_bert4rec_cloze", "model.last_prob=1.0"],
    # beauty_bert4rec since 2026-12-07 05:45: its runs were the former beauty_bert4rec (now
    # beauty_bert4rec_preln) in BERT's layout at lr 1e-3
    "beauty_bert4rec": ["experiment=beauty_bert4rec_preln", "model.block=post_ln", "model.init=normal",
                        "model.emb_scale=false", "trainer.lr=0.001"],
    "toys_bert4rec_preln": ["experiment=beauty_bert4rec_cloze", "dataset=toys", "model.last_prob=1.0"],
    # toys_bert4rec since 2026-12-07 02:50: its runs were the former toys_bert4rec (now
    # toys_bert4rec_preln) in BERT's layout at lr 1e-3
    "toys_bert4rec": ["experiment=toys_bert4rec_preln", "model.block=post_ln", "model.init=normal",
                      "model.emb_scale=false", "trainer.lr=0.001"],
    "toys_bert4rec_cloze": ["experiment=beauty_bert4rec_cloze", "dataset=toys"],
    # beauty_narm since 2026-12-07: its runs were the former preset + model.dropout_ct=0.7
    "beauty_narm": [*NARM_FORMER, "model.dropout_ct=0.7"],
    # toys_narm since 2026-12-07 (Thirteenth part): the same, on Toys
    # and patience 20 since 2026-12-08 (Fifteenth part)
    "toys_narm": [*(o.replace("dataset=beauty", "dataset=toys") for o in NARM_FORMER), "model.dropout_ct=0.7",
                  "trainer.patience=20"],
    # toys_gru4rec since 2026-12-08 (Fourteenth part): its runs were the former preset (beauty_gru4rec
    # on Toys) with the two overrides that became its values
    "toys_gru4rec": ["experiment=beauty_gru4rec", "dataset=toys", "model.dropout_hidden=0.7", "trainer.patience=15"],
    "beauty_sasrec_recbole": ["experiment=beauty_sasrec_ce", "eval.mask_history=none", "trainer.max_epochs=30",
                              "trainer.patience=30", "model.block=post_ln", "model.init=normal",
                              "model.emb_scale=false", "model.positions=from_start",
                              "trainer.window_mode=prefixes", "trainer.batch_size=256"],
}


@pytest.mark.parametrize("preset", sorted(MEASURED))
def test_presets_are_the_commands_their_runs_used(preset: str):
    """A preset named in docs/results.md for runs made with another preset and overrides must
    compose to the same config (tracking aside)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from tests.conftest import conf_dir

    def resolved(overrides: list[str]) -> dict:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)  # beauty_loss_sampler reads hydra:runtime.choices.loss
        try:
            with open_dict(cfg):
                cfg.pop("hydra")
            out = OmegaConf.to_container(cfg, resolve=True)
        finally:  # later tests compose configs of their own: leave no choices behind
            HydraConfig.instance().cfg = None
        for key in ("tracking", "negatives"):  # negatives: the per-loss table, applied to sampler.*
            out.pop(key, None)
        return out

    assert resolved([f"experiment={preset}"]) == resolved(MEASURED[preset])
