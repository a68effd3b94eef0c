"""The last tracebacks of issue 35: a full disk while ``torch.save`` writes a checkpoint, garbage
given as pre-trained weights, a failed download. Each is one line, the run ends FAILED with the
reason, and nothing half-written is left behind."""

from __future__ import annotations

import builtins
import errno
import io
import os
import urllib.error
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from recexp.data import download
from recexp.errors import DataError
from recexp.record.pretrained import KIND
from recexp.training import checkpoint
from tests.faults.test_bad_inputs import TINY, run_cli

_open = builtins.open


class _FullDisk:
    """A file whose writes fail with ENOSPC after ``room`` bytes, as a device filling up does."""

    def __init__(self, fh, room: int) -> None:  # noqa: ANN001
        self.fh, self.room = fh, room

    def write(self, data) -> int:  # noqa: ANN001
        self.room -= len(data)
        if self.room < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()

    def __enter__(self):  # noqa: ANN204
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.fh.close()


def _runs(runs: Path) -> list:
    client = MlflowClient(f"sqlite:///{runs / 'mlflow.db'}")
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.mark.parametrize("room", [0, 64, 4096])
def test_full_disk_during_torch_save_is_one_line_and_leaves_no_temp_file(tmp_runs, tmp_path, capfd, monkeypatch,
                                                                          room):
    # `open` looked up in checkpoint's module globals first: every checkpoint write meets a full disk
    monkeypatch.setattr(checkpoint, "open", lambda p, m: _FullDisk(_open(p, m), room), raising=False)
    out = tmp_path / "job"
    code, err = run_cli([*TINY, f"hydra.run.dir={out}"], capfd)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and "Traceback" not in err, err
    assert [ln for ln in lines if ln.startswith("error:")] == lines[-1:], err  # the header, then one line
    assert "no space left on the device (errno 28)" in lines[-1], err
    assert ".pt: " in lines[-1] and ".tmp" not in lines[-1]  # the checkpoint is named, not its temp file
    (run,) = _runs(tmp_runs)
    assert run.info.status == "FAILED" and "no space left" in run.data.tags["recexp.error"]
    assert not [p.name for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_a_direct_oserror_from_torch_save_keeps_its_errno(tmp_path, monkeypatch):
    def full(obj, f):  # noqa: ANN001, ANN202
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError) as info:
        checkpoint.save(tmp_path / "last.pt", x=1)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "last.pt")
    assert os.listdir(tmp_path) == []


def _torch_bytes(obj) -> bytes:  # noqa: ANN001
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


GARBAGE = {
    "empty": b"",
    "text": b"hello world\n",
    "random": bytes(range(256)) * 20,
    "zip header": b"PK\x03\x04" + bytes(200),
    "truncated": _torch_bytes({"kind": KIND, "model": {"w": torch.zeros(50)}})[:300],
    "a list": _torch_bytes([1, 2, 3]),
    "model not a dict": _torch_bytes({"kind": KIND, "model": 5}),
    "model not tensors": _torch_bytes({"kind": KIND, "model": {"w": "x"}}),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_pretrained_weights_are_one_line_and_the_run_fails(tmp_runs, tmp_path, capfd, name):
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(GARBAGE[name])
    code, err = run_cli(["model=s3rec", *TINY, f"model.pretrained={bad}"], capfd)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and "Traceback" not in err, err
    assert [ln for ln in lines if ln.startswith("error:")] == lines[-1:], err  # the header, then one line
    assert lines[-1].startswith(f"error: model.pretrained={bad}: "), err
    (run,) = _runs(tmp_runs)
    assert run.info.status == "FAILED" and run.data.tags["recexp.error"].startswith("model.pretrained=")


@pytest.mark.parametrize("failure", [urllib.error.URLError("offline"), TimeoutError("timed out"),
                                     OSError(errno.ENOSPC, "No space left on device")])
def test_a_failed_download_leaves_no_folder_it_made(tmp_path, monkeypatch, failure):
    def urlopen(url, timeout):  # noqa: ANN001, ANN202
        raise failure

    monkeypatch.setattr(download.urllib.request, "urlopen", urlopen)
    data = tmp_path / "data"  # does not exist yet: the download would make data/ and data/downloads/
    with pytest.raises(DataError, match="download from https://example.invalid/x.zip failed"):
        download.ensure_file(data, "ds/x.txt", {"url": "https://example.invalid/x.zip", "sha256": "0" * 64,
                                                "member": "x.txt"})
    assert os.listdir(tmp_path) == []


def test_a_download_with_the_wrong_hash_leaves_no_folder_it_made(tmp_path, monkeypatch):
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"not the file"))
    (tmp_path / "data").mkdir()  # there already: kept
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        download.ensure_file(tmp_path / "data", "ds/x.txt", {"url": "https://example.invalid/x.txt", "sha256": "0" * 64})
    assert os.listdir(tmp_path) == ["data"] and os.listdir(tmp_path / "data") == []


def test_a_bad_archive_leaves_no_extraction_folder(tmp_path):
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot extract"):
        download.ensure_file(tmp_path, "ds/x.txt", {"url": "https://example.invalid/x.zip", "member": "x.txt"})
    assert sorted(os.listdir(tmp_path)) == ["downloads"]
