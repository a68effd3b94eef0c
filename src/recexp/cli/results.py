"""``recexp results``: the verb's entry; the tables are built in :mod:`recexp.analysis.results`."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from recexp.analysis.results import main as results_main

    return results_main(argv)
