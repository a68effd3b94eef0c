"""One job in several processes (``torch.distributed``): who this process is, joining and leaving
the process group, the few collectives the layers above use, and how a failure in one process
reaches the others (and the launcher) as one line.

A process belongs to a distributed job when ``WORLD_SIZE`` > 1 is in its environment, set by
``torchrun`` (several machines) or by :mod:`recexp.jobs.launch` (``trainer.num_processes=N`` on
one machine). Every process runs the same job; rank 0 alone writes the record. Backends: gloo on
CPU, nccl on CUDA (``cuda:<local rank>``).

The rendezvous key-value store (``MASTER_ADDR:MASTER_PORT``) also carries the job's first failure
(:func:`post_failure`): the first process to fail writes its one line there, so rank 0 records
that cause (not the "connection closed" its own collective then meets) and the launcher prints it.
The store is hosted by the launcher when ``TORCHELASTIC_USE_AGENT_STORE=True`` (torchrun's agent,
or :mod:`recexp.jobs.launch`), else by rank 0.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it is used: the task wrapper imports this module's errors
    import torch

#: the rendezvous address of a single-machine job: loopback only, never a public interface
LOCALHOST = "127.0.0.1"
FAILURE_KEY = "recexp/failure"
RESULT_KEY = "recexp/result"
LEFT_KEY, ALL_LEFT_KEY = "recexp/left", "recexp/all-left"
#: seconds a process waits for the others at the rendezvous and in one collective
TIMEOUT_S = 1800.0


class RankFailed(Exception):
    """Another process of the job failed first; the message is its one line."""


class WorkerFailed(Exception):
    """A process of a spawned job failed with an internal error: ``rank R: Type: message
    (traceback in FILE)`` -- printed as one line by the task wrapper."""


@dataclass
class World:
    rank: int
    size: int
    local_rank: int = 0
    local_size: int = 1
    store: Any = None  # the rendezvous store once joined

    @property
    def main(self) -> bool:
        return self.rank == 0


def forced() -> bool:
    """``RECEXP_DDP=always``: one process goes through the distributed path too."""
    from recexp.runtime.envvars import setting

    return setting("RECEXP_DDP") == "always"


def from_env(environ: dict[str, str] | None = None) -> World | None:
    """This process's place in a distributed job (started by a launcher: ``RANK`` is set), or
    None for a single-process job."""
    env = os.environ if environ is None else environ
    size = int(env.get("WORLD_SIZE") or 1)
    if "RANK" not in env or (size <= 1 and not forced()):
        return None
    local_size = int(env.get("LOCAL_WORLD_SIZE") or size)
    return World(rank=int(env["RANK"]), size=size, local_rank=int(env.get("LOCAL_RANK") or 0),
                 local_size=local_size)


def is_main_process(environ: dict[str, str] | None = None) -> bool:
    """Rank 0 of a distributed job, or a single process: the one that reports to the terminal."""
    env = os.environ if environ is None else environ
    return int(env.get("RANK") or 0) == 0


def host_store(host: str = LOCALHOST) -> tuple[Any, int]:
    """(a store server listening on ``host`` only, its port): a free port the OS picks, bound
    before it is handed to the server, so no other process can take it in between."""
    import torch.distributed as dist

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen()
    port = int(sock.getsockname()[1])
    server = dist.TCPStore(host, port, None, True, timedelta(seconds=TIMEOUT_S), wait_for_workers=False,
                           master_listen_fd=sock.detach())  # the server owns the socket from here
    return server, port


def agent_hosts_store(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return str(env.get("TORCHELASTIC_USE_AGENT_STORE", "")).lower() == "true"


def connect_store(host: str, port: int, world_size: int, is_master: bool, timeout_s: float = TIMEOUT_S) -> Any:
    """The job's key-value store (namespaced by torchrun's restart count: a restarted group never
    reads the failure of the attempt before)."""
    import torch.distributed as dist

    store = dist.TCPStore(host, port, world_size, is_master, timedelta(seconds=timeout_s))
    return dist.PrefixStore(f"recexp/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def rank_device(name: str, world: World) -> str:
    """The device this rank computes on: ``cpu`` stays; ``auto`` / ``cuda`` take this process's
    GPU, ``cuda:<local rank>`` (``auto`` without CUDA is the CPU, as for one process)."""
    import torch

    if str(name) in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{world.local_rank}"
    return str(name)


def join(world: World, device: torch.device) -> None:
    """Join the process group (gloo on CPU, nccl on CUDA, whose device must be set first)."""
    import torch
    import torch.distributed as dist

    host, port = os.environ.get("MASTER_ADDR", LOCALHOST), int(os.environ["MASTER_PORT"])
    world.store = connect_store(host, port, world.size, world.main and not agent_hosts_store())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=world.store, rank=world.rank,
                            world_size=world.size, timeout=timedelta(seconds=TIMEOUT_S))


def leave(world: World | None = None, clean: bool = False, wait_s: float = 60.0) -> None:
    """Leave the process group. ``clean`` (the job went well): wait for every rank at a barrier,
    and do not return before every rank has left -- a process that ends while another still
    holds its gloo connections can make that one abort ("Connection closed by peer" in gloo's
    own thread), a finished job ending with a crashed rank."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    if clean:
        dist.barrier()
    dist.destroy_process_group()
    if clean and world is not None and world.store is not None:
        try:
            if world.store.add(LEFT_KEY, 1) >= world.size:
                world.store.set(ALL_LEFT_KEY, "1")
            else:
                world.store.wait([ALL_LEFT_KEY], timedelta(seconds=wait_s))
        except Exception:  # noqa: BLE001 -- the store's host left first: nothing more to wait for
            pass


def backend() -> str:
    import torch.distributed as dist

    return str(dist.get_backend()) if dist.is_initialized() else ""


def broadcast(obj: Any, world: World | None) -> Any:
    """Rank 0's ``obj`` on every rank (picklable objects)."""
    if world is None:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any, world: World | None) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0, in rank order (None on the other ranks)."""
    if world is None:
        return [obj]
    import torch.distributed as dist

    out = [None] * world.size if world.main else None
    dist.gather_object(obj, out, dst=0)
    return out


def all_sum(t: torch.Tensor, world: World | None) -> torch.Tensor:
    """The sum of ``t`` over ranks, on every rank (in place)."""
    if world is not None:
        import torch.distributed as dist

        dist.all_reduce(t)
    return t


def failure_of(exc: BaseException, rank: int, traceback_file: str = "") -> dict[str, Any]:
    """The one-line record of ``exc`` that :func:`post_failure` shares."""
    from recexp.errors import UserError

    kind = ("interrupt" if isinstance(exc, KeyboardInterrupt) else "peer" if isinstance(exc, RankFailed)
            else "user" if isinstance(exc, UserError) else "error")
    line = (str(exc.args[0]) if exc.args else "") if kind == "interrupt" else \
        str(exc) if kind in ("user", "peer") else f"{type(exc).__name__}: {exc}"
    return {"rank": rank, "kind": kind, "line": (line.splitlines() or [""])[0][:2000], "traceback": traceback_file}


def post_failure(store: Any, failure: dict[str, Any]) -> dict[str, Any]:
    """Record ``failure`` unless another process already did; returns the job's first failure
    (``failure`` itself when none was there, or when the store is gone with its host)."""
    try:
        first = store.compare_set(FAILURE_KEY, "", json.dumps(failure))
        return json.loads(first)
    except Exception:  # noqa: BLE001 -- the store's host died: this process's own view is all there is
        return failure


def first_failure(store: Any) -> dict[str, Any] | None:
    try:
        return json.loads(store.get(FAILURE_KEY)) if store.check([FAILURE_KEY]) else None
    except Exception:  # noqa: BLE001
        return None


def translate(world: World, exc: BaseException, traceback_file: str = "") -> BaseException:
    """What this process raises for ``exc`` (after posting it): its own exception when it failed
    first; else the first failure as :class:`RankFailed` (or ``KeyboardInterrupt`` when the job
    was interrupted), so rank 0 closes its run with the cause, not the broken connection it met."""
    mine = failure_of(exc, world.rank, traceback_file)
    first = post_failure(world.store, mine) if world.store is not None else mine
    if first == mine or first.get("rank") == world.rank:
        return exc
    if first["kind"] == "interrupt":  # (no message: Ctrl-C)
        return KeyboardInterrupt(*[first["line"]] if first["line"] else [])
    where = "" if first["kind"] in ("user", "peer") else f"rank {first['rank']}: "
    return RankFailed(f"{where}{first['line']}")
