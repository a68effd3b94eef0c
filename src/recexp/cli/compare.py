"""``recexp compare``: the verb's entry; the comparison itself lives in :mod:`recexp.compare`."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from recexp.compare import main as compare_main

    return compare_main(argv)
