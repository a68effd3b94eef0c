"""Property-based tests (the ``hypothesis`` library) of every input surface's reader and schema:
for generated malformed input the answer is a result or one :class:`UserError` line naming the
file or field, never another exception. Small budgets (``max_examples`` ~40) keep the default
suite fast; heavier properties are marked slow."""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recexp.data.checks import read_checked
from recexp.data.readers import READERS
from recexp.errors import UserError

N = int(os.environ.get("RECEXP_PROPERTY_EXAMPLES", "40"))  # raise it to search harder, e.g. 1000
FAST = settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def one_line(exc: BaseException, *must: str) -> None:
    msg = str(exc)
    assert msg and "\n" not in msg and "Traceback" not in msg, repr(msg)
    for m in must:
        assert m in msg, (m, msg)


# --- data files: the readers of src/recexp/data/readers.py, through data/checks.read_checked -------------------------------------------------------
_TOKEN = st.one_of(st.sampled_from(["1", "2", "10", "-3", "1.5", "abc", "", " ", "nan", "inf", "1e400", "2" * 30,
                                    "user_id", "item_id", "timestamp", "user_id:token", "item_id:token",
                                    "timestamp:float", "userId", "movieId", "caf\xe9", "\x00"]),
                   st.text(max_size=6))
_SEP = st.sampled_from(["\t", ",", "::", " ", ";", ""])
_LINE = st.builds(lambda toks, sep: sep.join(toks), st.lists(_TOKEN, max_size=5), _SEP)
_TEXT = st.builds(lambda lines, end: "\n".join(lines) + end, st.lists(_LINE, max_size=6), st.sampled_from(["", "\n"]))
_BYTES = st.one_of(_TEXT.map(lambda t: t.encode("utf-8")), _TEXT.map(lambda t: t.encode("latin-1", "replace")),
                   st.binary(max_size=64))


@FAST
@given(fmt=st.sampled_from(sorted(READERS)), data=_BYTES)
def test_readers_return_a_table_or_one_data_error_line(fmt: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"file.{fmt}"
        path.write_bytes(data)
        try:
            df = read_checked(READERS[fmt], path, {})  # the one door every data file passes
        except UserError as exc:
            one_line(exc, str(path))
        else:
            assert list(df.columns) == ["user", "item", "timestamp"]


# --- values a user can type: junk of every YAML / JSON type ---------------------------------------------------------
_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                    st.text(max_size=8), st.sampled_from(["", "abc", "0", "-1", "1e9", "true", "maybe", "12", "a=b",
                                                          "1,2", "${oc.env:HOME}", "[1, 2]"]))
_KEY = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=5)  # a key a user can type: no newline
JUNK = st.recursive(_SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(_KEY, inner, max_size=3)),
                    max_leaves=6)


# --- config values: config.prepare, the one door of every verb ---------------------------------------------------
CONFIG_KEYS = ["seed", "max_len", "device", "trainer.lr", "trainer.batch_size", "trainer.max_epochs", "trainer.patience",
               "trainer.monitor", "trainer.grad_clip", "trainer.weight_decay", "model.hidden_size", "model.num_blocks",
               "model.num_heads", "model.dropout", "eval.ks", "eval.batch_size", "eval.mask_history", "eval.beyond",
               "dataset.min_user_count", "dataset.generator.num_users", "tracking.skip_finished",
               "tracking.stale_after_s", "loss.temperature"]


@pytest.fixture(scope="module")
def base_cfg():
    from tests.conftest import TINY, compose_cfg

    return compose_cfg(TINY)


@FAST
@given(key=st.sampled_from(CONFIG_KEYS), value=JUNK)
def test_config_values_pass_or_fail_in_one_line_naming_the_key(base_cfg, key: str, value: Any) -> None:
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    from recexp.config.prepare import prepare
    from recexp.errors import ConfigError

    cfg = copy.deepcopy(base_cfg)
    try:
        with open_dict(cfg):
            OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    except (OmegaConfBaseException, ValueError):  # not even a config value (Hydra refuses it on the command line)
        return
    try:
        prepared = prepare(cfg, "train")
    except ConfigError as exc:
        one_line(exc)
        return
    from recexp.config.schema import rule_for

    rule = rule_for(key, (OmegaConf.select(prepared, key.split(".")[0]) or {}).get("_target_")
                    if "." in key else None)
    if rule is not None:  # what passes the range table is a value of its kind, not a mapping or a string
        assert rule.ok(OmegaConf.select(prepared, key)), (key, value)


# --- hypothesis files: analysis/hypothesis/spec.py ----------------------------------------------------------------
GOOD_SPEC = {"claim": "two blocks beat one", "base": ["device=cpu"],
             "factor": {"key": "model.num_blocks", "baseline": 1, "levels": [2, 4], "overrides": {4: ["model.dropout=0.3"]}},
             "metric": "ndcg_10", "split": "test", "direction": "greater", "alpha": 0.05, "smallest_effect": 0.0,
             "seeds": 3, "allow_few_seeds": False, "budget": {"max_epochs": 5, "note": "x"}}
SPEC_PATHS = [("claim",), ("base",), ("factor",), ("factor", "key"), ("factor", "baseline"), ("factor", "levels"),
              ("factor", "overrides"), ("metric",), ("split",), ("direction",), ("alpha",), ("smallest_effect",),
              ("seeds",), ("allow_few_seeds",), ("budget",), ("budget", "max_epochs"), ("name",), ("unknown_key",)]


def _mutated(path: tuple[str, ...], value: Any, delete: bool) -> dict:
    d = copy.deepcopy(GOOD_SPEC)
    node = d
    for p in path[:-1]:
        node = node[p]
    if delete:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return d


def _write(text: str) -> tuple[tempfile.TemporaryDirectory, Path]:
    d = tempfile.TemporaryDirectory()
    p = Path(d.name) / "h.yaml"
    p.write_text(text, encoding="utf-8")
    return d, p


@FAST
@given(path=st.sampled_from(SPEC_PATHS), value=JUNK, delete=st.booleans())
def test_hypothesis_files_load_or_fail_in_one_line(path: tuple[str, ...], value: Any, delete: bool) -> None:
    from recexp.analysis.hypothesis import spec

    d, p = _write(yaml.safe_dump(_mutated(path, value, delete), allow_unicode=True))
    with d:
        try:
            h = spec.load(p, compose=False)
        except UserError as exc:
            one_line(exc, str(p))
        else:  # what loads is what the schema promises
            assert h.baseline not in h.levels and len(h.levels) >= 1 and all(isinstance(x, str) for x in h.levels)
            assert len(h.seeds) >= 3 or h.allow_few_seeds
            assert 0 < h.alpha < 0.5 and h.smallest_effect >= 0 and isinstance(h.metric, str)


@FAST
@given(text=st.one_of(st.text(max_size=80), _TEXT))
def test_any_text_as_a_hypothesis_file_loads_or_fails_in_one_line(text: str) -> None:
    from recexp.analysis.hypothesis import spec

    d, p = _write(text)
    with d:
        try:
            spec.load(p, compose=False)
        except UserError as exc:
            one_line(exc, str(p))


@pytest.mark.slow
@settings(max_examples=N, deadline=None)
@given(metric=st.one_of(st.sampled_from(["ndcg_10", "hr_20", "mrr_5", "novelty_10", "coverage_10", "ndcg_11"]),
                        st.text(max_size=8)),
       base=st.lists(st.sampled_from(["eval=sampled", "eval=full", "eval.ks=[1,3]", "model=gru4rec", "nokey=1"]),
                     max_size=2))
def test_hypothesis_files_compose_or_fail_in_one_line(metric: str, base: list[str]) -> None:
    from recexp.analysis.hypothesis import spec

    d, p = _write(yaml.safe_dump({**GOOD_SPEC, "metric": metric, "base": ["device=cpu", *base]}))
    with d:
        try:
            spec.load(p)
        except UserError as exc:
            one_line(exc, str(p))


# --- results --targets files: analysis/targets.py ------------------------------------------------------------------
@FAST
@given(data=st.dictionaries(st.sampled_from(["beauty", "toys", "1"]),
                            st.one_of(JUNK, st.dictionaries(st.sampled_from(["ndcg_10", "hr_10", "published", "models",
                                                                             "same_as", "other"]), JUNK, max_size=3)),
                            max_size=3))
def test_targets_files_load_or_fail_in_one_line(data: dict) -> None:
    from recexp.analysis.targets import load_targets

    d, p = _write(yaml.safe_dump(data, allow_unicode=True))
    with d:
        try:
            out = load_targets(p)
        except UserError as exc:
            one_line(exc, str(p))
        else:
            assert all(0 < t.get(k, 0.5) <= 1 for t in out.values() for k in ("ndcg_10", "hr_10"))
