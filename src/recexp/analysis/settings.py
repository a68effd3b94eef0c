"""What a *setting* is: every config value of a run except its seed and bookkeeping, with the
defaults of keys added since; the rows of the results tables group runs by it (``recexp results``)
and ``recexp compare`` groups by the same keys."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from recexp.analysis.query import RunRecord
from recexp.config.hashing import VOLATILE
from recexp.record import tag

# params that never change what a run computes, or that tell seeds of one setting apart
NOT_A_SETTING = (*VOLATILE, "seed", "optimized_metric", "hydra")


def is_setting_key(key: str) -> bool:
    """False for the seed and for keys that say where or how visibly a run computes, not what
    (the config hash leaves the same keys out): what results rows and compare groups ignore."""
    return not any(key == k or key.startswith(k + ".") for k in NOT_A_SETTING)
# keys added after runs were recorded, with the value that reproduces what those runs did:
# (model class suffix, "" for every model; key; value). A run without the key is grouped as if it
# had that value.
# the encoder layout SASRec had before its knobs existed, and BERT4Rec (its encoder) before 2026-12-06
_LAYOUT = (("model.block", "pre_ln"), ("model.init", "xavier"), ("model.emb_scale", "True"),
           ("model.positions", "from_end"))
ADDED_KEYS = (*((model, key, value) for model in ("sasrec.SASRec", "bert4rec.BERT4Rec") for key, value in _LAYOUT),
              ("", "trainer.cpu_amp", "False"),  # fp32 steps on CPU: all that existed before the key
              ("bsarec.BSARec", "model.filter_scope", "prefix"),  # each prefix filtered alone: before 2026-12-05
              ("bert4rec.BERT4Rec", "model.last_prob", "0.0"))  # the cloze draw alone: before 2026-12-06

# import paths of plug-ins that moved (2026-12-04, the package's layers): a run recorded with the old
# path ran the same class
MOVED = (("recexp.samplers.", "recexp.losses.samplers."), ("recexp.losses_scalable.", "recexp.losses.scalable."),
         ("recexp.pretrain.trainer.", "recexp.training.pretrain.trainer."))


def current_target(value: str) -> str:
    for old, new in MOVED:
        if value.startswith(old):
            return new + value[len(old):]
    return value


@dataclass
class Row:
    dataset: str
    model: str
    loss: str
    sampler: str
    preset: str
    seeds: list[int]
    hr: list[float]
    ndcg: list[float]
    best_epochs: list[float]
    epoch_s: list[float]
    params: dict[str, str]
    protocol: str = ""  # "" for the documents' protocol (full ranking, the whole history masked)
    valid: list[float] = field(default_factory=list)  # valid NDCG@10 of the best epoch: what selects
    minutes: list[float] = field(default_factory=list)  # training minutes per run
    repeat_share: list[float] = field(default_factory=list)  # test targets repeating the history
    repeat: list[float] = field(default_factory=list)  # test NDCG@10 over those targets
    explore: list[float] = field(default_factory=list)  # ... and over the others
    run_ids: list[str] = field(default_factory=list)  # the member runs, in the order of ``seeds``

    @property
    def selection(self) -> float:
        """Mean validation NDCG@10 (test NDCG@10 for records without one): what picks a best row."""
        v = [x for x in self.valid if x == x]
        return statistics.fmean(v) if v else statistics.fmean(self.ndcg)


def protocol_of(params: dict[str, str]) -> str:
    """How a run was evaluated, when not the documents' protocol: e.g. ``eval.mask_history=none``
    (RecBole's: nothing masked) or ``sampled ranking``. Rows of other protocols get tables of
    their own and never meet a target."""
    parts = []
    if not params.get("eval._target_", "FullRanking").endswith("FullRanking"):
        parts.append("sampled ranking")
    mask = effective_mask(params)
    if mask != "all":
        parts.append(f"eval.mask_history={mask}" + (" (retired: looks at the label)" if mask == "except_target" else ""))
    return ", ".join(parts)


def effective_mask(params: dict[str, str]) -> str:
    """The history-masking rule a run's figures obey. Runs recorded under the retired
    ``except_target`` rule on a split where no validation or test target repeats the history
    obey ``all`` exactly (the two rules differ only on repeated targets), so they count as such.
    Runs recorded before the key had a name were masked with ``all`` (the boolean ``true``)."""
    mask = params.get("eval.mask_history", "all")
    mask = {"True": "all", "False": "none"}.get(mask, mask)
    if mask == "except_target" and params.get("data.test_repeat_targets") == "0" \
            and params.get("data.valid_repeat_targets") == "0":
        return "all"
    return mask


def setting_params(params: dict[str, str]) -> dict[str, str]:
    """The params that identify a setting: all but the seed and bookkeeping, with the defaults of
    keys added since (``ADDED_KEYS``) and the pre-training run's id reduced to "pretrained"."""
    kept = {k: current_target(v) if k.endswith("._target_") else v for k, v in params.items()
            if is_setting_key(k) and k != "dataset.mask_history"}
    kept["eval.mask_history"] = effective_mask(params)  # dataset.mask_history only provides its default
    for target, key, value in ADDED_KEYS:
        if params.get("model._target_", "").endswith(target):
            kept.setdefault(key, value)
    if kept.get("model.pretrained") not in (None, "", "None", "null"):
        # the id of the pre-training run differs per seed; what it did is in the pretrain.* params
        kept["model.pretrained"] = "pretrained"
    return kept


def setting_key(run: RunRecord) -> tuple[tuple[str, str], ...]:
    """What identifies a setting: every param except the seed and bookkeeping. The preset is a
    name, not a setting: seeds run as ``experiment=beauty_x dataset=toys`` and as ``toys_x``, which
    composes to the same, are one setting (the row names the latest run's preset)."""
    return tuple(sorted(setting_params(run.params).items()))


def preset_params(name: str) -> dict[str, str] | None:
    """The setting params a run of ``recexp train experiment=<name>`` records (composed, resolved
    and flattened as the run logs them), or None when the preset does not compose. The README
    summary finds a ``<dataset>_best`` preset's runs by these, whatever preset name they ran under."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from recexp.config.compose import CONFIG_NAME, conf_dir
    from recexp.config.resolve import resolve_config
    from recexp.record.tracker import flatten

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose(config_name=CONFIG_NAME, overrides=[f"experiment={name}"], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)  # presets may read hydra:runtime.choices
        choices = {k: str(v) for k, v in cfg.hydra.runtime.choices.items() if v is not None}
        with open_dict(cfg):
            cfg.pop("hydra")
        cfg = resolve_config(cfg, choices)
        flat = flatten(OmegaConf.to_container(cfg, resolve=True))
    except Exception:  # noqa: BLE001 - no such preset, or one that needs more than its name
        return None
    finally:  # leave no Hydra state behind: later compositions in this process read it
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None
    params = {k: "" if v is None else str(v)[:5000] for k, v in flat.items()}
    kept = setting_params(params)
    if params.get("pretrain.finetune") == "True":  # `recexp pretrain`: the fine-tune run names its pre-training
        kept["model.pretrained"] = "pretrained"
    return kept


_COMPOSED: dict[tuple[str, str], dict[str, str] | None] = {}


def _composed(name: str) -> dict[str, str] | None:
    """``preset_params(name)``, kept for the process (a table asks per row)."""
    from recexp.config.compose import conf_dir

    key = (str(conf_dir()), name)
    if key not in _COMPOSED:
        _COMPOSED[key] = preset_params(name)
    return _COMPOSED[key]


def preset_now(row: Row) -> str | None:
    """The preset that composes to ``row``'s setting today: its own, else (the preset moved on, or
    the runs were another preset with overrides) one of the dataset's other presets, ``<dataset>_best``
    first; None when none does."""
    from recexp.config.compose import conf_dir

    stem = row.dataset.replace("-", "")
    others = sorted(p.stem for p in (conf_dir() / "experiment").glob(f"{stem}_*.yaml"))
    for name in [row.preset] * bool(row.preset) + sorted(others, key=lambda n: n != best_preset_name(row.dataset)):
        if (now := _composed(name)) is not None and runs_of(row, now):
            return name
    return None


def preset_cell(r: Row, moved: str = " as it was when run") -> str:
    """The preset that composes to ``r``'s setting today, and the one its runs were made as when
    that differs (another preset with overrides, or a preset that moved on under a new name); when
    none composes to it, the runs' preset and ``moved``."""
    now = preset_now(r) if r.preset else None
    return ("-" if not r.preset else f"`{r.preset}`" if now == r.preset else f"`{now}` (run as `{r.preset}`)"
            if now else f"`{r.preset}`{moved}")


def best_preset_name(dataset: str) -> str:
    """``<dataset>_best`` with the dataset name as preset names spell it (ml-100k -> ml100k_best)."""
    return f"{dataset.replace('-', '')}_best"


def best_preset_of(row: Row) -> str | None:
    """``<dataset>_best`` when it composes to ``row``'s setting (whatever preset the runs were made
    as), else None: the headline's name for the row."""
    name = best_preset_name(row.dataset)
    return name if (now := _composed(name)) is not None and runs_of(row, now) else None


def runs_of(row: Row, setting: dict[str, str]) -> bool:
    """Whether ``row`` ran exactly ``setting`` (params the run adds itself, ``data.*``, aside)."""
    own = {k: v for k, v in row.params.items() if k != tag.PRESET and not k.startswith("data.")}
    return own == {k: v for k, v in setting.items() if not k.startswith("data.")}


def _sampler(run: RunRecord) -> str:
    name = run.tags.get(tag.SAMPLER, "") or "none"
    if name == "none":
        return "none"
    k = run.params.get("sampler.num_negatives", "?")
    shared = run.params.get("sampler.shared") == "True"
    return f"{name} ({k}{' shared' if shared else ''})"


def group_rows(runs: list[RunRecord], epoch_times: dict[str, list[float]]) -> list[Row]:
    """Runs with a test NDCG@10, grouped by :func:`setting_key`; ``epoch_times`` maps run id to
    its per-epoch training seconds (empty for count models)."""
    groups: dict[tuple, list[RunRecord]] = defaultdict(list)
    for r in runs:
        if "test/ndcg_10" in r.metrics:
            groups[setting_key(r)].append(r)
    rows = []
    for members in groups.values():
        # a setting rerun with the same seed counts once (the latest run): averaging both would
        # weigh that seed twice
        latest: dict[str, RunRecord] = {}
        for m in sorted(members, key=lambda m: m.start_time):
            latest[m.params.get("seed", "0")] = m
        newest = max(latest.values(), key=lambda m: m.start_time)
        members = sorted(latest.values(), key=lambda m: int(float(m.params.get("seed", 0))))
        first = members[0]
        rows.append(Row(
            dataset=first.tags.get(tag.DATASET, first.params.get("dataset.name", "?")),
            model=first.tags.get(tag.MODEL, "?"), loss=first.tags.get(tag.LOSS, "?"),
            sampler=_sampler(first), preset=newest.tags.get(tag.PRESET, ""),
            seeds=sorted(int(float(m.params.get("seed", 0))) for m in members),
            hr=[m.metrics.get("test/hr_10", float("nan")) for m in members],
            ndcg=[m.metrics["test/ndcg_10"] for m in members],
            best_epochs=[m.metrics.get("best_epoch", float("nan")) for m in members],
            epoch_s=[t for m in members for t in epoch_times.get(m.run_id, [])],
            params={**dict(setting_key(first)), tag.PRESET: newest.tags.get(tag.PRESET, "")},
            protocol=protocol_of(first.params),
            valid=[m.metrics.get("valid/ndcg_10", float("nan")) for m in members],
            minutes=[m.metrics["fit_s"] / 60 for m in members if "fit_s" in m.metrics],
            repeat_share=[m.metrics["test/repeat_share"] for m in members if "test/repeat_share" in m.metrics],
            repeat=[m.metrics["test/repeat/ndcg_10"] for m in members if "test/repeat/ndcg_10" in m.metrics],
            explore=[m.metrics["test/explore/ndcg_10"] for m in members if "test/explore/ndcg_10" in m.metrics],
            run_ids=[m.run_id for m in members]))
    # best validation first: the tables never rank settings by their test figure
    return sorted(rows, key=lambda r: (r.dataset, r.protocol, -r.selection, r.model))


def mean_spread(xs: list[float]) -> str:
    """``0.1234 ± 0.0012`` (sample standard deviation) for several seeds, ``0.1234`` for one."""
    m = statistics.fmean(xs)
    return f"{m:.4f} ± {statistics.stdev(xs):.4f}" if len(xs) > 1 else f"{m:.4f}"
