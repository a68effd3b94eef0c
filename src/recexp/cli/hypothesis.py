"""``recexp hypothesis run FILE`` / ``show FILE``: the verb's entry; see :mod:`recexp.analysis.hypothesis`."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from recexp.analysis.hypothesis import main as hypothesis_main

    return hypothesis_main(argv)
