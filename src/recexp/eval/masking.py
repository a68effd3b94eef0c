"""The one history-masking rule every evaluator follows, and the older conventions kept for
reproducing published figures (``eval.mask_history``)."""

from __future__ import annotations

from recexp.errors import ConfigError

#: except_target (default): the user's history is not ranked, except the target itself (a repeat
#:   the user really made is ranked like any other item);
#: all: the history is masked even when the target repeats it, which is then a miss (the S3Rec
#:   code's convention, behind most figures published on the Amazon/LastFM files);
#: none: nothing is masked (RecBole's sequential full ranking).
MODES = ("except_target", "all", "none")


def mask_mode(value: object) -> str:
    """Normalise ``eval.mask_history``; the old booleans map to their old meaning
    (true: mask all, repeated target a miss; false: mask nothing)."""
    if isinstance(value, bool):
        return "all" if value else "none"
    if value not in MODES:
        raise ConfigError(f"eval.mask_history={value!r}: expected one of {', '.join(MODES)}")
    return str(value)
