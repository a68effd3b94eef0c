"""A trained model as three plain files: ``weights.pt`` (tensors only, loaded with
``weights_only=True``), ``bundle.json`` (the model's config values, sizes, dataset fingerprint)
and ``ids.npz`` (raw <-> internal id maps and each user's latest history, ``allow_pickle=False``).

Nothing in a bundle is executed: the model class comes from the project's own
``conf/model/<name>.yaml``, never from a ``_target_`` stored in the bundle, and only plain values
(numbers, strings, lists) are taken from it.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from recexp.config.compose import conf_dir
from recexp.data.seqs import EvalSet, Seqs, SplitData
from recexp.errors import UserError

FORMAT = 1
WEIGHTS, META, IDS = "weights.pt", "bundle.json", "ids.npz"


class BundleError(UserError):
    """A model bundle that is missing, corrupt, unsafe or inconsistent; the message names the file."""


@dataclass
class Bundle:
    model: torch.nn.Module
    meta: dict[str, Any]
    user_raw: np.ndarray  # (U,) raw id of user u+1
    item_raw: np.ndarray  # (N,) raw id of item i+1
    history: Seqs  # row u-1 = latest known history of user u (users 1..U)
    path: Path


# ---- writing ---------------------------------------------------------------------------------


def _with_target(ev: EvalSet) -> Seqs:
    """Each evaluation example's history with its target appended: the sequence up to the target."""
    h = ev.hist
    items = np.insert(h.items, h.offsets[1:], ev.targets)  # inserted before each row's end index
    times = np.insert(h.times, h.offsets[1:], ev.target_times)
    return Seqs.from_lengths(h.users, h.lengths + 1, items, times)


def latest_histories(data: SplitData) -> Seqs:
    """Per user 1..U the longest known chronological sequence (train, valid or test example with
    its target): what the user did up to now. Users without any sequence get an empty row."""
    parts = [data.train] + [_with_target(ev) for ev in (data.valid, data.test) if ev is not None and len(ev)]
    users = np.concatenate([p.users for p in parts])
    lengths = np.concatenate([p.lengths for p in parts])
    starts = np.concatenate([p.offsets[:-1] + off for p, off in
                             zip(parts, np.cumsum([0] + [len(p.items) for p in parts[:-1]]), strict=True)])
    items = np.concatenate([p.items for p in parts])
    times = np.concatenate([p.times for p in parts])
    order = np.lexsort((lengths, users))  # per user, longest last
    last = order[np.r_[users[order][1:] != users[order][:-1], True]]  # (one row per user present)
    U = data.num_users
    row_len = np.zeros(U + 1, dtype=np.int64)
    row_start = np.zeros(U + 1, dtype=np.int64)
    row_len[users[last]], row_start[users[last]] = lengths[last], starts[last]
    row_len, row_start = row_len[1:], row_start[1:]
    idx = np.repeat(row_start - np.cumsum(row_len) + row_len, row_len) + np.arange(row_len.sum())
    return Seqs.from_lengths(np.arange(1, U + 1), row_len, items[idx], times[idx])


def model_option(target: str, choice: str | None = None) -> str | None:
    """The ``conf/model`` option whose ``_target_`` is ``target`` (the typed choice first)."""
    names = ([choice] if choice else []) + sorted(p.stem for p in (conf_dir() / "model").glob("*.yaml"))
    for name in names:
        path = conf_dir() / "model" / f"{name}.yaml"
        if path.is_file() and OmegaConf.load(path).get("_target_") == target:
            return name
    return None


def save(path: Path, model: torch.nn.Module, model_cfg: dict[str, Any], option: str, data: SplitData,
         max_len: int, mask_history: bool, run_id: str | None = None) -> Path:
    """Write the bundle of ``model`` (already on its best-validation weights) to ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    values = {k: v for k, v in model_cfg.items() if k not in ("_target_", "pretrained")}
    meta = {"format": FORMAT, "model": option, "model_values": values, "max_len": int(max_len),
            "dataset": data.name, "fingerprint": data.fingerprint, "num_items": int(data.num_items),
            "num_users": int(data.num_users), "mask_history": bool(mask_history), "run_id": run_id}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    extra = {k: v for k, v in model.state_dict().items() if not isinstance(v, torch.Tensor)}
    torch.save({"state": state, "extra": extra, "fingerprint": data.fingerprint}, path / WEIGHTS)
    hist = latest_histories(data)
    n_users, n_items = int(data.num_users), int(data.num_items)
    user_raw = data.user_raw_ids if data.user_raw_ids is not None else np.arange(1, n_users + 1)
    item_raw = data.item_raw_ids if data.item_raw_ids is not None else np.arange(1, n_items + 1)
    np.savez(path / IDS, user_raw=np.asarray(user_raw).astype(str), item_raw=np.asarray(item_raw).astype(str),
             offsets=hist.offsets, items=hist.items.astype(np.int32), times=hist.times,
             fingerprint=np.array(data.fingerprint))
    (path / META).write_text(json.dumps(meta, indent=2))
    return path


# ---- reading ---------------------------------------------------------------------------------


def find(path: Path) -> Path:
    """The bundle folder inside ``path`` (itself, a job folder's ``model/``, an MLflow model)."""
    path = Path(path)
    if (path / META).is_file():
        return path
    for cand in (path / "model", path / "model" / "data" / "bundle", path / "data" / "bundle"):
        if (cand / META).is_file():
            return cand
    raise BundleError(f"{path}: no trained model here (no {META}; runs logged before `recexp recommend` "
                      "existed, or a run that did not finish, have none)")


def _plain(value: Any, where: str) -> Any:
    """Only numbers, strings, booleans, null, lists and string-keyed dicts; no ``_target_`` and no
    interpolation: a bundle's config values are data, never instructions."""
    if isinstance(value, dict):
        if "_target_" in value:
            raise BundleError(f"{where}: refuses a '_target_' inside model values")
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, where) for v in value]
    if isinstance(value, str) and "${" in value:
        raise BundleError(f"{where}: refuses an interpolation ({value[:40]!r})")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise BundleError(f"{where}: unexpected value of type {type(value).__name__}")


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((path / META).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path / META}: not a readable model description ({exc})") from None
    need = ("model", "model_values", "max_len", "fingerprint", "num_items", "num_users")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or any(k not in meta for k in need):
        raise BundleError(f"{path / META}: not a recexp model description (format {FORMAT} with {', '.join(need)})")
    meta["model_values"] = _plain(meta["model_values"], f"{path / META}: model_values")
    return meta


def _read_ids(path: Path, meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, Seqs]:
    f = path / IDS
    try:
        with np.load(f, allow_pickle=False) as z:
            d = {k: z[k] for k in ("user_raw", "item_raw", "offsets", "items", "times", "fingerprint")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise BundleError(f"{f}: not a readable id map ({type(exc).__name__}: {str(exc)[:80]})") from None
    if str(d["fingerprint"]) != meta["fingerprint"]:
        raise BundleError(f"{f}: id maps of another dataset (fingerprint {d['fingerprint']}, "
                          f"the model's is {meta['fingerprint']})")
    U, N = int(meta["num_users"]), int(meta["num_items"])
    if len(d["user_raw"]) != U or len(d["item_raw"]) != N or len(d["offsets"]) != U + 1:
        raise BundleError(f"{f}: id maps do not match the model ({U} users, {N} items)")
    items = d["items"].astype(np.int64)
    if len(items) and (items.min() < 1 or items.max() > N):
        raise BundleError(f"{f}: history item ids outside 1..{N}")
    hist = Seqs.from_lengths(np.arange(1, U + 1), np.diff(d["offsets"]), items, d["times"])
    return d["user_raw"].astype(str), d["item_raw"].astype(str), hist


def _read_weights(path: Path, meta: dict[str, Any], device: torch.device) -> dict[str, Any]:
    f = path / WEIGHTS
    if not zipfile.is_zipfile(f):  # torch.save writes a zip archive; anything else is not ours
        raise BundleError(f"{f}: not a readable weights file (not a torch.save archive)")
    try:
        blob = torch.load(f, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:  # an object torch's safe loader refuses: never unpickled
        why = next((ln.strip() for ln in str(exc).splitlines() if "Unsupported" in ln), "not tensors")
        raise BundleError(f"{f}: refused, it holds more than tensors ({why[:120]})") from None
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise BundleError(f"{f}: not a readable weights file ({type(exc).__name__}: {str(exc)[:80]})") from None
    if not isinstance(blob, dict) or not isinstance(blob.get("state"), dict):
        raise BundleError(f"{f}: not recexp model weights (expected a dict with 'state')")
    if blob.get("fingerprint") != meta["fingerprint"]:
        raise BundleError(f"{f}: weights of a model trained on another dataset (fingerprint "
                          f"{blob.get('fingerprint')}, the id maps are of {meta['fingerprint']})")
    return blob


def build_model(meta: dict[str, Any], where: str) -> torch.nn.Module:
    """The model class of the project's own ``conf/model/<name>.yaml``, with the bundle's values."""
    from recexp.training.parts import instantiate_user

    name = str(meta["model"])
    file = conf_dir() / "model" / f"{name}.yaml"
    if "/" in name or name.startswith(".") or not file.is_file():
        raise BundleError(f"{where}: model {name!r} is not a model of this recexp ({conf_dir() / 'model'})")
    target = OmegaConf.load(file).get("_target_")
    from hydra.errors import InstantiationException

    node = OmegaConf.create({"_target_": target, **meta["model_values"]})
    try:
        return instantiate_user(node, num_items=int(meta["num_items"]), num_users=int(meta["num_users"]))
    except InstantiationException as exc:  # values this recexp's model does not take (another version)
        raise BundleError(f"{where}: model_values do not fit {target} ({str(exc).splitlines()[-1][:160]})") from None


def _load_state(model: torch.nn.Module, blob: dict[str, Any], where: Path) -> None:
    state = {**blob["state"], **blob.get("extra", {})}
    # count models size some buffers at fit (a sparse matrix's nnz): take the saved shapes
    buffers = dict(model.named_buffers())
    for key, t in blob["state"].items():
        if key in buffers and buffers[key].shape != t.shape:
            owner, _, leaf = key.rpartition(".")
            setattr(model.get_submodule(owner) if owner else model, leaf, torch.empty_like(t))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).split("\n\t", 2)[1] if "\n\t" in str(exc) else str(exc)
        raise BundleError(f"{where / WEIGHTS}: does not fit model {type(model).__name__} ({first.strip()[:160]})") from None


def load(path: Path, device: torch.device | str = "cpu") -> Bundle:
    """Read a bundle (see :func:`find`) and rebuild its model on ``device`` in eval mode."""
    path = find(Path(path))
    device = torch.device(device)
    meta = _read_meta(path)
    user_raw, item_raw, hist = _read_ids(path, meta)
    blob = _read_weights(path, meta, device)
    model = build_model(meta, str(path / META)).to(device)
    _load_state(model, blob, path)
    model.eval()
    return Bundle(model, meta, user_raw, item_raw, hist, path)
