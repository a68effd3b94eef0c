"""S3Rec's two-stage workflow through the real config: pre-train (MLflow artifact), fine-tune from
the run id (exact weights, linked runs), and the errors a user can cause."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from mlflow.tracking import MlflowClient
from omegaconf import open_dict

from recexp.errors import ConfigError
from recexp.jobs.pretrain import pretrain
from recexp.jobs.train import train
from recexp.record.pretrained import load_pretrained
from recexp.training.parts import model_node

SMALL = ["model=s3rec", "pretrain=s3rec", "pretrain.epochs=1", "pretrain.progress=false",
         "model.hidden_size=16", "model.ffn_dim=32", "dataset.generator.num_users=120",
         "dataset.generator.num_items=60", "dataset.generator.mean_length=8", "max_len=10",
         "trainer.max_epochs=1"]


def _with_attributes(tmp_path: Path) -> str:
    """An attribute file for the synthetic items (raw ids 1..60): item i has attributes i%5+1, i%3+6."""
    path = tmp_path / "attrs.json"
    path.write_text(json.dumps({str(i): [i % 5 + 1, i % 3 + 6] for i in range(1, 61)}))
    return f"+dataset.attributes={path}"


def test_pretrain_then_finetune_restores_exact_weights_and_links_runs(tiny_cfg, tmp_path, tmp_runs):
    cfg = tiny_cfg(*SMALL, _with_attributes(tmp_path))
    out = pretrain(cfg, tmp_path / "pre")
    run_id = str(out["pretrain_run_id"])
    assert len(run_id) == 32 and all(k in out for k in ("pretrain/aap", "pretrain/mip", "pretrain/map", "pretrain/sp"))
    client = MlflowClient(f"sqlite:///{tmp_runs / 'mlflow.db'}")
    assert "pretrained.pt" in [a.path for a in client.list_artifacts(run_id)]
    assert client.get_run(run_id).data.tags["recexp.role"] == "pretrain"

    ckpt = torch.load(out["checkpoint"], weights_only=True)
    saved = ckpt["model"]
    # a fresh fine-tuning model (no attribute table: the run only passes num_items/num_users)
    model = instantiate(model_node(cfg), num_items=ckpt["num_items"], num_users=120)
    tags = load_pretrained(model, run_id, fingerprint="", runs_dir=str(tmp_runs))
    assert tags["recexp.pretrained_from"] == run_id
    own = model.state_dict()
    encoder = model.encoder_keys(own)
    assert "item_emb.weight" in encoder and "blocks.0.attn.qkv.weight" in encoder
    for k in encoder:
        assert torch.equal(own[k], saved[k]), k  # bit-for-bit the pre-trained encoder

    # fine-tuning run through the real entry point: linked to the pre-training run in MLflow
    with open_dict(cfg):
        cfg.model.pretrained = run_id
        cfg.trainer.max_epochs = 0  # evaluation only: the restored weights are what is scored
    ft = train(cfg, tmp_path / "ft")
    assert ft["test/ndcg_10"] >= 0
    runs = client.search_runs([client.get_run(run_id).info.experiment_id],
                              f"tags.`recexp.pretrained_from` = '{run_id}'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"


def test_pretrain_chain_without_attributes_needs_attribute_objectives_off(tiny_cfg, tmp_path):
    cfg = tiny_cfg(*SMALL, "tracking=none")
    with pytest.raises(ConfigError, match="no item attributes.*pretrain.drop=aap\\+map"):
        pretrain(cfg, tmp_path / "a")
    cfg = tiny_cfg(*SMALL, "tracking=none", "pretrain.drop=aap+map", "pretrain.finetune=true")
    out = pretrain(cfg, tmp_path / "b")  # MIP and SP still run, then the same job fine-tunes
    assert "pretrain/mip" in out and "pretrain/aap" not in out and "valid/ndcg_10" in out


def test_bad_pretrained_references_are_one_line_config_errors(tiny_cfg, tmp_path, tmp_runs):
    model = instantiate(model_node(tiny_cfg(*SMALL)), num_items=60, num_users=120)
    with pytest.raises(ConfigError, match="not an MLflow run id"):
        load_pretrained(model, str(tmp_path / "nope.pt"), "")
    with pytest.raises(ConfigError, match="no MLflow run with that id"):
        load_pretrained(model, "0" * 32, "", runs_dir=str(tmp_runs))

    class Evil:  # unpickling this would run code: weights_only refuses it
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"model": Evil()}))
    with pytest.raises(ConfigError, match="is not a readable torch checkpoint"):
        load_pretrained(model, str(evil), "")
    torch.save({"kind": "s3rec-pretrain", "fingerprint": "abc", "dataset": "x", "model": {}}, tmp_path / "o.pt")
    with pytest.raises(ConfigError, match="item ids would not line up"):
        load_pretrained(model, str(tmp_path / "o.pt"), "def")
    torch.save({"kind": "s3rec-pretrain", "model": {"item_emb.weight": torch.zeros(5, 16)}}, tmp_path / "s.pt")
    with pytest.raises(ConfigError, match="tensor item_emb.weight"):
        load_pretrained(model, str(tmp_path / "s.pt"), "")


def test_pretrain_refuses_a_model_without_objectives(tiny_cfg, tmp_path):
    cfg = tiny_cfg(*[o for o in SMALL if not o.startswith("model")], "model=sasrec", "tracking=none",
                   "pretrain.drop=aap+map")
    with pytest.raises(ConfigError, match="model=SASRec has no pre-training objectives"):
        pretrain(cfg, tmp_path)
