"""Tags a job of a hypothesis sweep carries (set by ``recexp hypothesis run`` through the
environment, so the jobs stay ordinary ``recexp train -m`` jobs). Light: imported by every run."""

from __future__ import annotations

import os

from recexp.record import tag

NAME_ENV, LEVEL_ENV = "RECEXP_HYPOTHESIS_NAME", "RECEXP_HYPOTHESIS_LEVEL"


def hypothesis_env_tags() -> dict[str, str]:
    return {tag: os.environ[env] for env, tag in ((NAME_ENV, tag.HYPOTHESIS_NAME), (LEVEL_ENV, tag.HYPOTHESIS_LEVEL)) if os.environ.get(env)}
