"""Issue 21's fault cases: runs started in the same instant, a new store raced by several runs,
a damaged or foreign checkpoint, a crashing sweep job, a read-only runs folder, a full disk."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from recexp.cli import main
from recexp.config.hashing import config_hash
from recexp.config.schema import validate
from recexp.errors import UserError
from recexp.jobs.train import train
from recexp.record import tag
from recexp.record.store import ensure_experiment, tracking_uri
from recexp.runtime.faults import close_run
from recexp.training import checkpoint
from tests.faults.helpers import all_runs, cli_cmd, die_with_parent, env_for, split_runs

SMALL = ["dataset.generator.num_users=100", "dataset.generator.num_items=50", "dataset.generator.mean_length=6",
         "trainer.max_epochs=1", "trainer.progress=false", "max_len=8", "device=cpu"]
SASREC = ["model.hidden_size=8", "model.ffn_dim=16", "model.num_blocks=1"]


def _at_once(runs: Path, n: int) -> list[tuple[int, str]]:
    env = env_for(runs)
    # model=pop: no training, so the processes overlap on what races (the store's creation)
    procs = [subprocess.Popen(cli_cmd([*SMALL, "model=pop", f"seed={i}"]), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env, preexec_fn=die_with_parent)
             for i in range(n)]
    return [(p.wait(timeout=600), p.communicate()[0]) for p in procs]


def _check_all_finished(runs: Path, n: int) -> None:
    _, found = all_runs(runs)
    assert len(found) == n and all(r.info.status == "FINISHED" for r in found)
    assert len({r.data.tags[tag.OUTPUT_DIR] for r in found}) == n  # one output folder per job


def test_job_folders_are_unique_even_in_the_same_instant():
    from recexp.config.compose import conf_dir

    hydra = OmegaConf.to_container(OmegaConf.load(conf_dir() / "train.yaml").hydra, resolve=False)
    assert "${recexp.uid:}" in hydra["run"]["dir"] and "${recexp.uid:}" in hydra["sweep"]["dir"]
    a, b = (OmegaConf.create({"d": "${recexp.uid:}"}) for _ in range(2))
    assert a.d != b.d and a.d == a.d  # different jobs differ; one job's value is stable
    assert a.d.startswith(f"{os.getpid()}-")


def test_two_runs_at_once_on_a_new_store_both_finish(tmp_runs):
    results = _at_once(tmp_runs, 2)
    for rc, out in results:
        assert rc == 0, out[-3000:]
        assert "already exists" not in out and "Traceback" not in out
    _check_all_finished(tmp_runs, 2)


@pytest.mark.slow
def test_eight_runs_at_once_on_a_new_store_all_finish(tmp_runs):
    for rc, out in _at_once(tmp_runs, 8):
        assert rc == 0, out[-3000:]
    _check_all_finished(tmp_runs, 8)


def _job_config(cfg) -> dict:
    """The config `run.train` records, hashes and checkpoints: its `auto` choices resolved."""
    from omegaconf import OmegaConf

    from recexp.config.resolve import resolve_config

    validate(cfg)
    return OmegaConf.to_container(resolve_config(cfg), resolve=True)


def _job_hash(cfg) -> str:
    return config_hash(_job_config(cfg))


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _dead_run(cfg, out_dir: Path, chash: str) -> str:
    uri = tracking_uri(None, cfg.paths.runs_dir)
    exp = ensure_experiment(uri, cfg.tracking.experiment)
    tags = {tag.CONFIG_HASH: chash, tag.HOST: socket.gethostname(), tag.PID: str(_dead_pid()),
            tag.OUTPUT_DIR: str(out_dir.resolve())}
    return MlflowClient(uri).create_run(exp, tags=tags).info.run_id  # RUNNING, its process gone


def test_damaged_checkpoint_is_moved_aside_and_a_fresh_run_starts(tiny_cfg, tmp_path, caplog):
    cfg = tiny_cfg(*SASREC, "trainer.max_epochs=1")
    chash = _job_hash(cfg)
    old = tmp_path / "old"
    old.mkdir()
    (old / "last.pt").write_bytes(b"PK\x03\x04 truncated garbage")
    dead = _dead_run(cfg, old, chash)
    train(cfg, tmp_path / "new")
    client, runs = all_runs(Path(cfg.paths.runs_dir))
    by_id = {r.info.run_id: r for r in runs}
    assert by_id[dead].info.status == "FAILED"
    assert "damaged" in by_id[dead].data.tags["recexp.error"]
    assert not (old / "last.pt").exists() and list(old.glob("last.pt.damaged-*"))
    (fresh,) = [r for r in runs if r.info.run_id != dead]
    assert fresh.info.status == "FINISHED"
    warnings = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
    assert len(set(warnings)) == 1 and "\n" not in warnings[0]  # one message (a handler left by another test may repeat it)


def test_checkpoint_of_another_config_is_never_resumed(tiny_cfg, tmp_path):
    cfg = tiny_cfg(*SASREC, "seed=1")
    other = _job_config(tiny_cfg(*SASREC, "seed=2"))
    chash = _job_hash(cfg)
    old = tmp_path / "shared"
    checkpoint.save(old / "last.pt", resumable=True, config=other, epoch=1)
    problem = checkpoint.resume_problem(old / "last.pt", chash, 1)
    assert problem is not None and "another config" in problem and "seed 2" in problem
    same = tmp_path / "same"
    checkpoint.save(same / "last.pt", resumable=True, config=_job_config(cfg), epoch=1)
    assert checkpoint.resume_problem(same / "last.pt", chash, 1) is None
    dead = _dead_run(cfg, old, chash)
    train(cfg, tmp_path / "new")
    _, runs = all_runs(Path(cfg.paths.runs_dir))
    by_id = {r.info.run_id: r for r in runs}
    assert by_id[dead].info.status == "KILLED" and "another config" in by_id[dead].data.tags["recexp.error"]
    assert (old / "last.pt").exists()  # not ours to move: it belongs to another job
    assert [r.info.status for r in runs if r.info.run_id != dead] == ["FINISHED"]


def test_crashing_sweep_jobs_fail_alone_and_are_counted(tmp_runs):
    # job 0: a bad value (no run of its own yet); job 1: a crash that is no user error
    # ('dict' has no .to); job 2: a bad value; job 3: sound
    args = ["-m", "model=pop", "model._target_=builtins.dict,recexp.models.pop.Pop", "seed=-1,1", *SMALL]
    r = subprocess.run(cli_cmd(args), capture_output=True, text=True, env=env_for(tmp_runs), timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out[-3000:]  # every job ran; the exit status says some failed
    assert "Traceback" not in out and r.stderr.rstrip().splitlines()[-1].startswith("error: 3 jobs of the sweep failed")
    listed = next(ln for ln in out.splitlines() if ln.startswith("failed: 3 jobs of the sweep failed"))
    assert "#0 (" in listed and "#1 (" in listed and "#2 (" in listed and "AttributeError" in listed
    _, runs = all_runs(tmp_runs)
    parents, jobs = split_runs(runs)
    assert len(parents) == 1 and len(jobs) == 4
    assert parents[0].info.status == "FAILED"
    assert parents[0].data.tags["recexp.jobs"] == "4" and parents[0].data.tags["recexp.jobs_failed"] == "3"
    failed = [j for j in jobs if j.info.status == "FAILED"]
    assert len(failed) == 3 and all(j.data.tags.get("recexp.error") for j in failed)
    assert sum("AttributeError" in j.data.tags["recexp.error"] for j in failed) == 1
    assert sum("seed=-1" in j.data.tags["recexp.error"] for j in failed) == 2
    assert list(tmp_runs.glob("multirun/*/*/*/error.txt"))  # the crash's traceback, kept in its folder


@pytest.fixture
def tmpfs(tmp_path):
    mounted: list[Path] = []

    def mount(size: str = "64k", ro: bool = False) -> Path:
        mnt = tmp_path / f"mnt{len(mounted)}"
        mnt.mkdir()
        opts = f"size={size}" + (",ro" if ro else "")
        if subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mnt)], capture_output=True).returncode:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        mounted.append(mnt)
        return mnt

    yield mount
    for m in mounted:
        subprocess.run(["umount", "-l", str(m)], capture_output=True)


def test_read_only_runs_folder_is_one_line(tmpfs, tmp_runs, capfd):
    ro = tmpfs(ro=True)
    capfd.readouterr()
    code = main(["train", *SMALL, f"paths.runs_dir={ro / 'runs'}"])
    err = capfd.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Read-only file system" in err and "Traceback" not in err


def test_full_runs_folder_is_one_line_before_any_job_file(tmpfs, tmp_runs, capfd):
    full = tmpfs("64k")
    capfd.readouterr()
    code = main(["train", *SMALL, f"paths.runs_dir={full}"])
    err = capfd.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no space left" in err and "Traceback" not in err


def test_full_disk_fails_the_run_with_the_reason_and_leaves_no_temp_file(tmpfs, tiny_cfg):
    disk = tmpfs("64k")
    out = disk / "job"
    out.mkdir()
    with (disk / "filler").open("wb", buffering=0) as fh:  # fill the device to the last block
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    cfg = tiny_cfg(*SASREC)
    with pytest.raises(UserError, match="no space left"):
        train(cfg, out)
    _, runs = all_runs(Path(cfg.paths.runs_dir))
    (run,) = runs
    assert run.info.status == "FAILED" and "no space left" in run.data.tags["recexp.error"]
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


class _FlakyStore:
    """A tracker whose store refuses writes twice (the disk is still full), then accepts."""

    run_id = "r1"

    def __init__(self) -> None:
        self.fails, self.ended = 2, None

    def set_tags(self, tags: dict[str, str]) -> None:
        if self.fails:
            self.fails -= 1
            raise OSError(errno.ENOSPC, "No space left on device")

    def end(self, status: str) -> None:
        self.ended = status


def test_run_is_closed_as_soon_as_the_store_accepts_writes():
    t = _FlakyStore()
    close_run(t, "FAILED", {"recexp.error": "disk full"}, retry_s=10)
    assert t.ended == "FAILED" and t.fails == 0


def test_the_store_holds_the_configured_experiment(tiny_cfg, tmp_path):
    cfg = tiny_cfg("model=pop", "tracking.experiment=issue21")
    train(cfg, tmp_path / "job")
    client, runs = all_runs(Path(cfg.paths.runs_dir))
    assert {e.name for e in client.search_experiments()} >= {"issue21"}
    assert [client.get_experiment(r.info.experiment_id).name for r in runs] == ["issue21"]
