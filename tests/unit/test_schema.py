"""The schema covers every numeric key of every config file, and says key, value and range."""

from __future__ import annotations

import pytest
import yaml

from recexp.config.compose import conf_dir
from recexp.config.schema import check_value, rule_for
from recexp.errors import ConfigError

SKIP = ("hydra", "experiment", "hparams_search", "dataset_model")


def _numeric_keys():
    for f in sorted(conf_dir().rglob("*.yaml")):
        rel = f.relative_to(conf_dir())
        if rel.parts[0] in SKIP:
            continue
        group = rel.parts[0] if len(rel.parts) > 1 else ""
        data = yaml.safe_load(f.read_text()) or {}
        target = data.get("_target_")

        def walk(node, prefix):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k not in ("defaults", "hydra") and not str(k).startswith("_"):
                        yield from walk(v, f"{prefix}.{k}" if prefix else str(k))
            elif isinstance(node, list):
                if any(isinstance(x, int | float) and not isinstance(x, bool) for x in node):
                    yield f"{prefix}[]", node[0], target, f  # noqa: B023 -- consumed at once
            elif isinstance(node, int | float) and not isinstance(node, bool):
                yield prefix, node, target, f  # noqa: B023 -- consumed at once

        yield from walk(data, group)


def test_every_numeric_key_has_a_rule_and_its_default_passes():
    found = list(_numeric_keys())
    assert len(found) > 60
    for key, default, target, f in found:
        rule = rule_for(key, target)
        assert rule is not None, f"{f}: {key} has no range in recexp/config/schema.py RULES"
        assert rule.ok(default), f"{f}: default {key}={default} outside {rule.allowed()}"


@pytest.mark.parametrize("key,value,target,message", [
    ("trainer.max_epochs", -3, None, "trainer.max_epochs=-3: expected an integer in [0, 1000000]"),
    ("model.dropout", 2, None, "model.dropout=2: expected a number in [0, 1)"),
    ("model.window", 0.5, "recexp.models.caser.Caser", "model.window=0.5: expected an integer >= 1"),
    ("model.window", 2.0, "recexp.models.recent_pop.RecentPop", "model.window=2.0: expected a number in (0, 1]"),
    ("trainer.lr", float("nan"), None, "trainer.lr=nan: expected a number > 0"),
    ("eval.ks", [], None, "eval.ks=[]: expected a non-empty list"),
    ("eval.ks", [10, 0], None, "eval.ks=[10, 0]: every element must be an integer >= 1, got 0"),
    ("seed", "abc", None, "seed='abc': expected an integer in [0, 9223372036854775807]"),
])
def test_one_line_names_key_value_and_range(key, value, target, message):
    with pytest.raises(ConfigError) as exc:
        check_value(key, value, target)
    assert str(exc.value) == message
