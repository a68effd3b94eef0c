"""``trainer.num_processes=N``: one training job in N processes on this machine, and the part of a
distributed job every process runs (whoever started it: this launcher or ``torchrun``).

The launcher is a small elastic agent. It refuses a request that cannot run, in one line, before
anything starts; prepares the data once (the cache the processes read); hosts the rendezvous
store on 127.0.0.1 on a port the OS picks; spawns N processes (``torch.multiprocessing``, spawn)
that each run :func:`recexp.jobs.train.train` as one rank -- exactly what ``torchrun`` makes of
``python -m recexp.cli train ...`` on each machine -- and waits. Rank 0 owns the record (the
MLflow run, checkpoints, outputs) and leaves its result in the store. The first failure of any
rank is in the store too (:mod:`recexp.runtime.distributed`): the launcher raises it as one line
(a user error as itself, an internal one with the file holding its traceback).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from recexp.errors import ConfigError, UserError
from recexp.runtime import distributed
from recexp.runtime import threads as cpu_threads
from recexp.runtime.distributed import LOCALHOST, RESULT_KEY, World

#: seconds the other ranks get to end by themselves after one failed (rank 0 closes its run)
GRACE_S = 30.0


def requested(cfg: DictConfig) -> int:
    return int(cfg.trainer.get("num_processes", 1) or 1)


def refuse(cfg: DictConfig, world: World | None = None) -> None:
    """One line for a distributed request that cannot run (``world``: the group torchrun made)."""
    import torch
    from hydra.utils import get_method

    n = requested(cfg)
    size, local = (world.size, world.local_size) if world is not None else (n, n)
    if n < 1:
        raise ConfigError(f"trainer.num_processes={n}: expected an integer >= 1")
    if world is not None and n not in (1, world.size):
        raise ConfigError(f"trainer.num_processes={n}: torchrun started {world.size} processes "
                          "(leave trainer.num_processes at 1 under torchrun, or set it to that number)")
    what = f"trainer.num_processes={n}" if world is None else f"{size} processes (torchrun)"
    dev = str(cfg.device)
    if dev.startswith("cuda:"):
        raise ConfigError(f"device={dev}: with {what} each process takes cuda:<local rank>; use device=cuda")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if (dev == "cuda" or (dev == "auto" and gpus)) and gpus < local:
        raise ConfigError(f"{what}: {gpus} GPU(s) visible and each process needs its own; use "
                          f"trainer.num_processes<={gpus} or device=cpu")
    if cfg.model.get("session_parallel", False):
        raise ConfigError(f"{what}: model.session_parallel=true is not supported with several processes "
                          "(its lanes carry hidden state across batches); use trainer.num_processes=1")
    model_cls = get_method(str(cfg.model._target_))
    if not getattr(model_cls, "trainable", True) or int(cfg.trainer.max_epochs) <= 0:
        why = (f"model {model_cls.__name__} is fit by counting" if not getattr(model_cls, "trainable", True)
               else "trainer.max_epochs=0")
        raise ConfigError(f"{what}: {why}: there is nothing to train in parallel; use trainer.num_processes=1")


def refuse_windows(windows: int, size: int) -> None:
    if size > windows:
        raise ConfigError(f"trainer.num_processes={size}: more processes than the {windows} training windows "
                          "of this data (each process needs a share of every step)")


def spawn(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Run the job in ``trainer.num_processes`` processes here; rank 0's result."""
    import torch.multiprocessing as mp

    from recexp.config.prepare import prepare

    cfg = prepare(cfg, "train")
    refuse(cfg)
    n = requested(cfg)
    refuse_windows(_windows(cfg), n)  # the data prepared once, before the processes start: they read the cache
    output_dir.mkdir(parents=True, exist_ok=True)
    server, port = distributed.host_store(LOCALHOST)  # the rendezvous: loopback only, a port the OS picks
    store = distributed.connect_store(LOCALHOST, port, n, False)
    env = {"MASTER_ADDR": LOCALHOST, "MASTER_PORT": str(port), "WORLD_SIZE": str(n), "LOCAL_WORLD_SIZE": str(n),
           "TORCHELASTIC_USE_AGENT_STORE": "True", "GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME", "lo")}
    threads, _ = cpu_threads.resolve(cfg.get("threads"), processes=n)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_child, name=f"recexp-rank{r}",
                         args=(env | {"RANK": str(r), "LOCAL_RANK": str(r)}, threads, cfg, output_dir, _hydra()))
             for r in range(n)]
    try:
        for p in procs:
            p.start()
        _wait(procs, store)
        codes, first = [p.exitcode for p in procs], distributed.first_failure(store)
        if first is None and store.check([RESULT_KEY]):  # rank 0 finished the job and its record
            if any(codes):  # (a rank that crashed on its way out, after the job was done)
                print(f"warning: the job finished, but its processes ended with exit codes {codes}", file=sys.stderr)
            return json.loads(store.get(RESULT_KEY))
        raise _failure(first, codes)
    except KeyboardInterrupt as exc:
        if exc.args and exc.args[0] == f"signal {int(signal.SIGTERM)}":  # to this process alone: pass it on
            for p in procs:  # (Ctrl-C reached every process of the terminal's group already)
                if p.is_alive():
                    os.kill(p.pid, signal.SIGTERM)
        _wait(procs, store, grace_s=60.0)
        raise
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        del store, server


def _windows(cfg: DictConfig) -> int:
    """Training windows of the job's data (prepared, and cached for the processes)."""
    import torch

    from recexp.data.batches import TrainWindows
    from recexp.training import parts

    data = parts.prepare_data(cfg)[0]
    return len(TrainWindows(data.train, int(cfg.max_len), torch.device("cpu"),
                            str(cfg.trainer.get("window_mode", "all"))))


def _wait(procs: list[Any], store: Any, grace_s: float = GRACE_S) -> None:
    """Until every process ended; once one failed, the others get ``grace_s`` to end by
    themselves (gloo tells them at once), then SIGTERM, then SIGKILL."""
    failed_at: float | None = None
    while alive := [p.sentinel for p in procs if p.is_alive()]:
        wait(alive, timeout=0.5)  # until one ends (or half a second)
        if failed_at is None and (any(p.exitcode not in (None, 0) for p in procs)
                                  or distributed.first_failure(store) is not None):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > grace_s:
            late = time.monotonic() - failed_at > grace_s + 10
            for p in procs:
                if p.is_alive():
                    p.kill() if late else p.terminate()


def _failure(first: dict[str, Any] | None, codes: list[int | None]) -> BaseException:
    if first is None:
        bad = next((r, c) for r, c in enumerate(codes) if c != 0)
        return distributed.WorkerFailed(f"rank {bad[0]} ended with exit code {bad[1]}"
                                        + (" (killed by a signal)" if (bad[1] or 0) < 0 else ""))
    if first["kind"] == "interrupt":
        return KeyboardInterrupt(*[first["line"]] if first["line"] else [])
    if first["kind"] == "user":
        return UserError(first["line"])
    where = "" if first["kind"] == "peer" else f"rank {first['rank']}: "
    tb = f" (traceback in {first['traceback']})" if first.get("traceback") else ""
    return distributed.WorkerFailed(f"{where}{first['line']}{tb}")


def _hydra() -> Any:
    """This Hydra run's own config (job number, choices), for the processes to see the same."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.instance().cfg if HydraConfig.initialized() else None
    except Exception:  # noqa: BLE001 -- not inside Hydra
        return None


def _child(env: dict[str, str], threads: int, cfg: DictConfig, output_dir: Path, hydra_cfg: Any) -> None:
    """One rank (a spawned process): the same job as the launcher's, quiet on failure (the
    launcher prints the one line)."""
    os.environ.update(env)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)  # a run ended by SIGTERM is KILLED, as in recexp.cli
    import logging

    from recexp.runtime.malloc import keep_freed_memory

    for name in ("alembic", "mlflow", "urllib3", "git"):  # as the task wrapper (recexp.cli.hydra_job)
        logging.getLogger(name).setLevel(logging.WARNING)
    keep_freed_memory()
    cpu_threads.pin(threads, f"each of {env['WORLD_SIZE']} processes")
    if hydra_cfg is not None:
        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().cfg = hydra_cfg
    world = distributed.from_env()
    from recexp.jobs.train import train

    try:
        result = train(cfg, output_dir)
        if world is not None and world.main:
            store = distributed.connect_store(env["MASTER_ADDR"], int(env["MASTER_PORT"]), world.size, False)
            store.set(RESULT_KEY, json.dumps(result, default=str))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BaseException as exc:  # noqa: BLE001 -- posted for the launcher, which prints it
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            return
        store = distributed.connect_store(env["MASTER_ADDR"], int(env["MASTER_PORT"]), int(env["WORLD_SIZE"]), False,
                                          timeout_s=10)
        distributed.post_failure(store, distributed.failure_of(exc, int(env["RANK"]),
                                                               traceback_file(exc, output_dir, int(env["RANK"]))))
        raise SystemExit(1) from None


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def traceback_file(exc: BaseException, output_dir: Path, rank: int) -> str:
    """An internal error's traceback, kept in ``error-rank<R>.txt`` (the one line names it)."""
    if isinstance(exc, UserError | KeyboardInterrupt | distributed.RankFailed | SystemExit):
        return ""
    path = output_dir / f"error-rank{rank}.txt"
    try:
        path.write_text("".join(traceback.format_exception(exc)))
    except OSError:
        return ""
    return str(path)


@contextmanager
def rank_errors(world: World | None, output_dir: Path) -> Iterator[None]:
    """Inside a rank's run: its failure posted for the others, and the job's first failure raised
    in its place (rank 0 then closes its run FAILED with the cause, or KILLED)."""
    if world is None:
        yield
        return
    try:
        yield
    except (Exception, KeyboardInterrupt) as exc:
        translated = distributed.translate(world, exc, traceback_file(exc, output_dir, world.rank))
        if translated is exc:
            raise
        raise translated from None


def world_params(world: World) -> dict[str, object]:
    """What the MLflow run of a distributed job records about its processes."""
    import torch

    return {"dist.world_size": world.size, "dist.backend": distributed.backend(),
            "dist.threads_per_process": torch.get_num_threads()}

