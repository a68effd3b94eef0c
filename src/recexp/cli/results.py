"""``recexp results``: the verb's entry; the tables are built in :mod:`recexp.tracking.results`."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from recexp.tracking.results import main as results_main

    return results_main(argv)
