"""The identity of a run's configuration: a hash of the resolved config without the keys that say
where or how visibly it computes. Resume and skip match runs by it (tag ``recexp.config_hash``),
and a checkpoint is resumed only by a job whose config hashes the same."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# keys that say where or how visibly a run computes, not what: excluded from the hash ("device":
# the local launcher pins cuda:N per worker, which must not turn a rerun into a new config;
# "threads": how many cores it used, chosen from the machine's load;
# "trainer.num_processes" and the ``dist.*`` params: how many processes share the work, like the
# device, and a job killed with N processes may resume with another number)
VOLATILE = ("paths", "tracking", "data_dir", "device", "threads", "trainer.progress", "trainer.log_every",
            "trainer.checkpoint_every", "hypothesis", "trainer.num_processes", "dist")


def config_hash(resolved: dict[str, Any]) -> str:
    cfg = json.loads(json.dumps(resolved, default=str))  # deep copy, plain types
    for key in VOLATILE:
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]
