"""Issue 21's battery of bad inputs, run through the real ``recexp train`` entry in-process (one
Hydra run each, tiny data): every case exits with code 2 and one line on stderr, no traceback,
and either no MLflow run exists or the run it started is FAILED with the reason as a tag."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from recexp.cli import main

TINY = ["dataset.generator.num_users=60", "dataset.generator.num_items=30", "dataset.generator.mean_length=6",
        "trainer.max_epochs=1", "trainer.progress=false", "max_len=8", "device=cpu",
        "model.hidden_size=8", "model.ffn_dim=16", "model.num_blocks=1"]


def _files(d: Path) -> dict[str, bytes]:
    latin = "user_id,item_id,timestamp\n1,caf\xe9,3\n".encode("latin-1")
    return {
        "binary.txt": bytes(range(128, 256)) * 4,
        "latin.csv": latin,
        "latin.inter": "user_id:token\titem_id:token\ttimestamp:float\n1\tcaf\xe9\t3\n".encode("latin-1"),
        "binary.data": b"\x00\xff\xfe" * 100,
        "huge.txt": f"1 2 3 {2**70}\n".encode(),
        "ok.csv": b"user_id,item_id,timestamp\n1,2,3\n1,3,4\n2,2,5\n",
        "inf.csv": b"user_id,item_id,timestamp\n1,2,inf\n1,3,4\n1,4,5\n2,2,1\n2,3,2\n2,4,3\n",
        "dup.csv": b"user_id,item_id,timestamp\n1,2,1\n1,2,1\n1,3,2\n1,3,2\n1,4,3\n1,4,3\n",
        "empty.csv": b"",
        "nan.csv": b"user_id,item_id,timestamp\n1,2,abc\n",
        "short.txt": b"1\n",
    }


def _custom(d: Path, name: str, fmt: str = "csv", *extra: str) -> list[str]:
    return ["dataset=custom", f"dataset.file={d / name}", f"dataset.format={fmt}",
            "dataset.min_user_count=0", "dataset.min_item_count=0", *TINY[3:], *extra]


def cases(d: Path) -> dict[str, list[str]]:
    corrupt = d / "corrupt.db"
    return {
        # numeric ranges, checked before any data is read (no run at all)
        "max_epochs<0": [*TINY, "trainer.max_epochs=-3"],
        "patience<0": [*TINY, "trainer.patience=-1"],
        "max_len=0": [*TINY, "max_len=0"],
        "ks=[0]": [*TINY, "eval.ks=[0]"],
        "ks=[]": [*TINY, "eval.ks=[]"],
        "eval_every=0": [*TINY, "trainer.eval_every=0"],
        "lr=nan": [*TINY, "trainer.lr=nan"],
        "lr<0": [*TINY, "trainer.lr=-0.1"],
        "seed=abc": [*TINY, "seed=abc"],
        "seed<0": [*TINY, "seed=-5"],
        "hidden<0": [*TINY, "model.hidden_size=-1"],
        "heads∤hidden": [*TINY, "model.num_heads=3"],
        "bsarec window scope, every position trained": [*TINY, "model=bsarec", "model.filter_scope=window",
                                                        "trainer.window_mode=all"],
        "dropout=2": [*TINY, "model.dropout=2"],
        "blocks=0": [*TINY, "model.num_blocks=0"],
        "batch=0": [*TINY, "trainer.batch_size=0"],
        "wd=inf": [*TINY, "trainer.weight_decay=inf"],
        "grad_clip<0": [*TINY, "trainer.grad_clip=-1"],
        "ckpt_every<0": [*TINY, "trainer.checkpoint_every=-1"],
        "eval.batch=0": [*TINY, "eval.batch_size=0"],
        "sampled negs=0": [*TINY, "eval=sampled", "eval.num_negatives=0"],
        "num_negatives=0": [*TINY, "loss=bce", "sampler=uniform", "sampler.num_negatives=0"],
        "gbce t=2": [*TINY, "loss=gbce", "sampler=uniform", "loss.t=2"],
        "min_user<0": [*TINY, "dataset.min_user_count=-1"],
        "num_items=1": [*TINY, "dataset.generator.num_items=1"],
        "split.min_length=0": [*TINY, "split.min_length=0"],
        "custom without file": ["dataset=custom", *TINY[3:]],
        "bad_rows=maybe": _custom(d, "ok.csv", "csv", "dataset.bad_rows=maybe"),
        "reader_args not a map": _custom(d, "ok.csv", "csv", "dataset.reader_args=5"),
        # Hydra's own composition errors
        "unknown key": [*TINY, "trainer.nosuch=1"],
        "unknown option": [*TINY, "model=nosuch"],
        "unparsable override": [*TINY, "trainer.lr=[1,"],
        # the store
        "uri not a store": [*TINY, "tracking.uri=notastore"],
        f"corrupt store {corrupt.name}": [*TINY, f"tracking.uri=sqlite:///{corrupt}"],
        # files (read after the run started: FAILED with the reason)
        "binary seqtxt": _custom(d, "binary.txt", "seqtxt"),
        "latin-1 csv": _custom(d, "latin.csv", "csv"),
        "latin-1 atomic": _custom(d, "latin.inter", "atomic"),
        "binary ml_udata": _custom(d, "binary.data", "ml_udata"),
        "binary ml_dat": _custom(d, "binary.data", "ml_dat"),
        "id 2^70": _custom(d, "huge.txt", "seqtxt"),
        "unknown reader_args key": _custom(d, "ok.csv", "csv", "+dataset.reader_args.bogus=1"),
        "bad sep regex": _custom(d, "ok.csv", "csv", "+dataset.reader_args.sep='[('"),
        "inf timestamps refused": _custom(d, "inf.csv", "csv", "dataset.bad_rows=error"),
        "duplicates refused": _custom(d, "dup.csv", "csv", "dataset.bad_rows=error"),
        "sha256 mismatch": _custom(d, "ok.csv", "csv", "dataset.sha256=" + "0" * 64),
        "unknown format": _custom(d, "ok.csv", "xml"),
        "missing file": _custom(d, "nope.csv", "csv"),
        "empty file": _custom(d, "empty.csv", "csv"),
        "non-numeric timestamp": _custom(d, "nan.csv", "csv"),
        "seqtxt one field": _custom(d, "short.txt", "seqtxt"),
        "device=tpu": [*TINY, "device=tpu"],
        "loss needs negatives": [*TINY, "loss=bce", "sampler=none"],
    }


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    for name, blob in _files(d).items():
        (d / name).write_bytes(blob)
    (d / "corrupt.db").write_bytes(b"this is not a database" * 100)
    runs = d / "runs"
    old = {k: os.environ.get(k) for k in ("RECEXP_RUNS_DIR", "MLFLOW_TRACKING_URI")}
    os.environ["RECEXP_RUNS_DIR"] = str(runs)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield d, runs
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def run_cli(args: list[str], capfd) -> tuple[int, str]:
    capfd.readouterr()
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # mlflow.set_tracking_uri of an earlier case sets it
    try:
        code = main(["train", *args])
    except SystemExit as exc:
        code = exc.code
    _, err = capfd.readouterr()
    return code, err


def _all_runs(runs: Path) -> dict[str, object]:
    db = runs / "mlflow.db"
    if not db.is_file():
        return {}
    client = MlflowClient(f"sqlite:///{db}")
    exps = [e.experiment_id for e in client.search_experiments()]
    return {r.info.run_id: r for r in client.search_runs(exps, max_results=1000)} if exps else {}


CASE_NAMES = list(cases(Path("/x")).keys())


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_input_is_one_line_exit_2(name, battery, capfd):
    d, runs = battery
    before = _all_runs(runs)
    code, err = run_cli(cases(d)[name], capfd)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    new = {k: r for k, r in _all_runs(runs).items() if k not in before}
    for r in new.values():  # either no run, or FAILED with the reason
        assert r.info.status == "FAILED"
        assert r.data.tags.get("recexp.error"), r.data.tags


def test_a_config_refusal_opens_no_run(battery, capfd):
    """Checked at composition, before data or store: nothing is recorded."""
    d, runs = battery
    before = _all_runs(runs)
    code, err = run_cli(cases(d)["bsarec window scope, every position trained"], capfd)
    assert code == 2 and "use trainer.window_mode=prefixes (got all)" in err, err
    assert _all_runs(runs).keys() == before.keys()


def test_battery_has_the_issue_s_forty(battery):
    assert len(CASE_NAMES) >= 40


def test_duplicates_and_inf_dropped_with_a_warning(battery, capfd):
    d, runs = battery
    code, err = run_cli(_custom(d, "inf.csv", "csv", "split.min_length=3"), capfd)
    assert code == 0, err
    from recexp.data.checks import clean_rows
    from recexp.data.readers import read_csv_generic

    df = clean_rows(read_csv_generic(d / "dup.csv"), "dup", "drop")
    assert len(df) == 3 and not df.duplicated().any()
