"""The benchmark scripts are not run by the suite (they take minutes and compare with RecBole), so
a refactor can break their imports unseen (bench_losses.py imported a function that had moved
out of recexp.jobs.train). Every ``from recexp... import name`` in bench/ must resolve."""

from __future__ import annotations

import ast
import importlib

import pytest

from tests.conftest import REPO

SCRIPTS = sorted((REPO / "bench").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_recexp_import_of_a_bench_script_resolves(script):
    for node in ast.walk(ast.parse(script.read_text(), filename=str(script))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "recexp":
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), \
                    f"{script.name}:{node.lineno}: {node.module} has no {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "recexp":
                    importlib.import_module(alias.name)
