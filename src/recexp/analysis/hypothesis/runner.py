"""Pre-registration and the sweep of a hypothesis.

The sweep is the ordinary ``recexp train -m`` path, one multirun per level (a level may carry its
own overrides, e.g. the sampler a sampled loss needs), all in the MLflow experiment
``hypothesis-<name>``. A rerun resumes: FINISHED jobs are skipped by config hash, dead ones resume
from their checkpoint (``tracking/resume.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

from recexp.analysis.hypothesis.spec import Hypothesis
from recexp.errors import UserError
from recexp.record import tag
from recexp.record.hypothesis_tags import LEVEL_ENV, NAME_ENV
from recexp.runtime.terminal import COMPACT_ENV

ROLE_TAG, REGISTRATION, REPORT = tag.ROLE, "hypothesis-registration", "hypothesis-report"


@dataclass
class Registration:
    run_id: str
    sha256: str
    registered_at: str
    created: bool  # registered by this call

    def registered_line(self, h: Hypothesis) -> str:
        """What a first ``run`` says: the file is registered now."""
        return f"registered {h.path.name} now: sha256 {self.sha256[:12]} at {self.registered_at}"

    def first_line(self, h: Hypothesis) -> str:
        """The verdict's first line: whether the file is still the one registered."""
        if self.sha256 == h.sha256:
            return (f"pre-registered: {h.path.name} sha256 {self.sha256[:12]} at {self.registered_at}; "
                    "the file is unchanged since")
        return (f"WARNING: {h.path.name} CHANGED since its pre-registration (sha256 {self.sha256[:12]} at "
                f"{self.registered_at}, now {h.sha256[:12]}): this verdict is not the pre-registered one")


def registration(client, experiment_id: str) -> Registration | None:
    runs = client.search_runs([experiment_id], f"tags.`{ROLE_TAG}` = '{REGISTRATION}'", max_results=1,
                              order_by=["attributes.start_time ASC"])
    if not runs:
        return None
    t = runs[0].data.tags
    return Registration(runs[0].info.run_id, t.get(tag.HYPOTHESIS_SHA256, ""), t.get(tag.REGISTERED_AT, "?"), False)


def register(client, experiment_id: str, h: Hypothesis) -> Registration:
    """The first registration stays: a later run of a changed file keeps the original hash."""
    found = registration(client, experiment_id)
    if found is not None:
        return found
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    run = client.create_run(experiment_id, run_name=f"registration-{h.name}",
                            tags={ROLE_TAG: REGISTRATION, tag.HYPOTHESIS_SHA256: h.sha256, tag.HYPOTHESIS_FILE: str(h.path), tag.REGISTERED_AT: when,
                                  tag.NOTE: h.claim})
    client.log_artifact(run.info.run_id, str(h.path))  # the registered text itself
    client.set_terminated(run.info.run_id, "FINISHED")
    return Registration(run.info.run_id, h.sha256, when, True)


def sweep(h: Hypothesis) -> None:
    """Every level's multirun, one after the other, through ``recexp train -m``; the claim is said
    once (before), each level in one line, each job in one line (``terminal.COMPACT_ENV``)."""
    levels = h.all_levels()
    print(f"claim: {h.claim}", file=sys.stderr, flush=True)
    for i, level in enumerate(levels, 1):
        env = {**os.environ, NAME_ENV: h.name, LEVEL_ENV: level, COMPACT_ENV: "1"}
        cmd = [sys.executable, "-m", "recexp.cli", "train", "-m", *h.overrides(level)]
        print(f"level {i}/{len(levels)}: {h.key}={level}{' (baseline)' if level == h.baseline else ''}, "
              f"seeds {', '.join(str(x) for x in h.seeds)}", file=sys.stderr, flush=True)
        rc = subprocess.call(cmd, env=env)
        if rc != 0:
            raise UserError(f"{h.path}: the sweep of {h.key}={level} exited with status {rc} (see its output above)")
