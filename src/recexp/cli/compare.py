"""``recexp compare``: the verb's entry; the comparison itself lives in :mod:`recexp.analysis.compare`."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from recexp.analysis.compare import main as compare_main

    return compare_main(argv)
