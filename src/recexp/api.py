"""The Python entry point: ``Dataset.from_pandas``, ``train`` (the CLI's Hydra composition and
MLflow run, in-process) and the result's ``recommend`` / ``metrics``.

A DataFrame is written once as a CSV under ``<runs_dir>/datasets/`` (named by a hash of its
content) and trained on through ``dataset=custom``: the run is recorded exactly like
``recexp train dataset=custom dataset.file=... dataset.min_user_count=0 dataset.min_item_count=0``
and can be re-run from the shell. Nothing is filtered unless ``k_core=`` asks for it. The runs
folder is ``$RECEXP_RUNS_DIR``, else ``./runs`` under the current directory (printed once).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from recexp.errors import ConfigError


def _seconds(col: pd.Series) -> pd.Series:
    """Numbers as they are; datetimes (any unit, naive or with a time zone) as Unix seconds."""
    if not pd.api.types.is_datetime64_any_dtype(col):
        return pd.to_numeric(col, errors="coerce")
    if col.dt.tz is not None:
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    return (col - pd.Timestamp(0)).dt.total_seconds()


def _k_core_line(frame: pd.DataFrame, k: int) -> str:
    """What a k-core filter keeps of ``frame`` (the run applies the same filter)."""
    from recexp.data.prepare import kcore

    kept = kcore(frame.rename(columns={"user_id": "user", "item_id": "item"}), k, k)
    return (f"Dataset.from_pandas: {k}-core filter (users and items with at least {k} interactions) keeps "
            f"{kept['user'].nunique():,} of {frame['user_id'].nunique():,} users, {kept['item'].nunique():,} of "
            f"{frame['item_id'].nunique():,} items, {len(kept):,} of {len(frame):,} interactions")


_SAID: set[str] = set()


def _say_once(line: str) -> None:
    if line not in _SAID:
        _SAID.add(line)
        print(line)


@dataclass
class Dataset:
    """Interactions ``user, item, timestamp`` (ids as strings), or a dataset config by name."""

    frame: pd.DataFrame | None = None
    name: str = "pandas"
    option: str | None = None  # a conf/dataset option (``Dataset.named("ml-100k")``)
    k_core: int = 0  # 0: every row is trained on; k: users and items with fewer than k interactions dropped

    @classmethod
    def from_pandas(cls, df: pd.DataFrame, user: str = "user_id", item: str = "item_id",
                    time: str | None = "timestamp", name: str = "pandas", k_core: int | None = None) -> Dataset:
        """``time=None``: the row order stands for time. Every row is trained on (exact duplicates
        aside) unless ``k_core=k`` asks to drop, repeatedly, the users and the items with fewer
        than ``k`` interactions; what that kept is printed."""
        if k_core is not None and (isinstance(k_core, bool) or not isinstance(k_core, int) or k_core < 1):
            raise ConfigError(f"Dataset.from_pandas(k_core={k_core!r}): expected an integer >= 1, or None for no filter")
        for key, col in (("user", user), ("item", item), ("time", time)):
            if col is not None and col not in df.columns:
                raise ConfigError(f"Dataset.from_pandas({key}={col!r}): no such column (columns: {list(df.columns)})")
        out = pd.DataFrame({"user_id": df[user].astype(str).to_numpy(), "item_id": df[item].astype(str).to_numpy()})
        if time is not None:
            t = _seconds(df[time])
            if t.isna().any():
                raise ConfigError(f"Dataset.from_pandas(time={time!r}): row {int(t.isna().to_numpy().argmax())} "
                                  "is not a number or a datetime")
            out["timestamp"] = t.to_numpy(dtype="float64")
        else:
            out["timestamp"] = range(len(out))
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"Dataset.from_pandas(name={name!r}): use letters, digits, - and _ only")
        if k_core and k_core > 1:
            print(_k_core_line(out, k_core))
        return cls(out, name, k_core=k_core or 0)

    @classmethod
    def named(cls, option: str) -> Dataset:
        """A dataset config of ``conf/dataset`` (``ml-100k``, ``beauty``, ...)."""
        return cls(None, option, option)

    def overrides(self, runs_dir: Path) -> list[str]:
        """The ``dataset=...`` overrides that make a run read this data."""
        if self.option is not None:
            return [f"dataset={self.option}"]
        assert self.frame is not None
        blob = self.frame.to_csv(index=False).encode()
        path = runs_dir / "datasets" / f"{self.name}-{hashlib.sha256(blob).hexdigest()[:16]}.csv"
        if not path.is_file():  # same content -> same file -> the prepared split is cached
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(blob)
            tmp.replace(path)
        # columns user_id, item_id, timestamp: the csv reader's defaults, so no reader_args
        return ["dataset=custom", f"dataset.name={self.name}", f"dataset.file={path.resolve()}", "dataset.format=csv",
                f"dataset.min_user_count={self.k_core}", f"dataset.min_item_count={self.k_core}"]


@dataclass
class TrainResult:
    """What :func:`train` returns: final metrics, the job folder and the MLflow run id."""

    metrics: dict[str, float]
    job_dir: Path
    run_id: str | None
    _rec: Any = field(default=None, repr=False)

    def recommend(self, users: Sequence[Any] | None = None, k: int = 10, keep_history: bool = False) -> pd.DataFrame:
        """Top-``k`` per user (raw ids; all users when ``users`` is None): ``user, rank, item, score``."""
        if self._rec is None:
            from recexp.serving.bundle import load
            from recexp.serving.recommend import Recommender

            self._rec = Recommender(load(self.job_dir))
        return self._rec.for_users(None if users is None else [str(u) for u in users], k,
                                   keep_history=keep_history)


def train(data: Dataset | str | None = None, overrides: Sequence[str] = (), job_dir: str | Path | None = None
          ) -> TrainResult:
    """One run, as ``recexp train <overrides>`` would do it: the same config composition, the
    same MLflow run. ``data``: a :class:`Dataset`, a ``conf/dataset`` option name, or None (the
    overrides choose)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from recexp.config.compose import CONFIG_NAME, conf_dir
    from recexp.jobs.train import train as run_train
    from recexp.record.store import runs_dir as resolve_runs_dir
    from recexp.record.store import runs_dir_line

    if isinstance(data, str):
        data = Dataset.named(data)
    given = [str(o) for o in overrides]
    runs_given = next((o.split("=", 1)[1] for o in given if o.startswith("paths.runs_dir=")), None)
    runs = resolve_runs_dir(runs_given)
    _say_once(runs_dir_line(runs_given))  # where the store and the job folders go, said once per process
    ds = data.overrides(runs) if data is not None else []
    if GlobalHydra.instance().is_initialized():  # e.g. a notebook that composed a config itself
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name=CONFIG_NAME, overrides=[*ds, *given], return_hydra_config=True)
    # what @hydra.main does: the choices (model=...) are visible to the run, `hydra` is not in its config
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    out = Path(job_dir) if job_dir else runs / "api" / datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")
    (out / ".hydra").mkdir(parents=True, exist_ok=True)  # as a CLI job folder: `recexp evaluate` reads it
    (out / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    (out / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create([*ds, *given])))
    try:
        metrics = run_train(cfg, out)
    finally:  # as @hydra.main on exit: a later run in this process must not see this run's choices
        HydraConfig.instance().cfg = None
    run_id = None
    meta = out / "model" / "data" / "bundle" / "bundle.json"
    if meta.is_file():
        import json

        run_id = json.loads(meta.read_text()).get("run_id")
    return TrainResult(metrics, out, run_id)
