"""Fetch public dataset files with a SHA-256 check. Offline, fail with one line saying where
to put the files."""

from __future__ import annotations

import hashlib
import http.client
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recexp.errors import DataError


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def leaves_no_folders(folder: Path) -> Iterator[None]:
    """On failure, remove the folders (empty ones, deepest first) that the block was about to
    create under ``folder``'s first existing ancestor: a failed download leaves nothing behind."""
    made = [p for p in [folder, *folder.parents] if not p.exists()]  # deepest first
    try:
        yield
    except BaseException:
        for d in made:
            try:
                d.rmdir()
            except OSError:  # not empty (another process put a file there) or already gone: keep it
                break
        raise


def fetch(url: str, dest: Path, sha256: str | None, *, allow_unverified: bool = False,
          timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` (atomically) and verify its SHA-256."""
    if sha256 is None and not allow_unverified:
        raise DataError(
            f"{dest}: not found locally and no SHA-256 is pinned for {url}; put the file there, "
            "or set dataset.download.allow_unverified=true to download it unchecked"
        )
    with leaves_no_folders(dest.parent):
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as tmp:
            tmp_path = Path(tmp.name)
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    shutil.copyfileobj(resp, tmp)
            except BaseException as exc:  # a network error, a full disk, Ctrl-C: no .part left
                tmp.close()
                tmp_path.unlink(missing_ok=True)
                if not isinstance(exc, urllib.error.URLError | OSError | http.client.HTTPException | ValueError):
                    raise
                raise DataError(
                    f"{dest}: not found locally and download from {url} failed ({exc}); "
                    f"place the file at {dest} or set RECEXP_DATA_DIR / data_dir= to a folder holding it"
                ) from None
        digest = sha256_of(tmp_path)
        if sha256 is not None and digest != sha256:
            tmp_path.unlink(missing_ok=True)
            raise DataError(f"{url}: SHA-256 mismatch (expected {sha256}, got {digest}); file discarded")
        tmp_path.replace(dest)
    return dest


def verify(path: Path, sha256: str | None, key: str) -> None:
    """A pinned file is used only when its SHA-256 matches (a pre-placed file as much as a
    downloaded one: the offline message tells users to put files there by hand)."""
    if not sha256:
        return
    digest = sha256_of(path)
    if digest != sha256:
        raise DataError(f"{path}: SHA-256 mismatch (expected {sha256} from {key}, got {digest}); replace the "
                        f"file, or set {key}=null to use a modified copy unchecked")


def ensure_file(data_dir: Path, rel_path: str, download: dict | None,
                sha256: str | None = None) -> tuple[Path, str | None]:
    """Return the local path of a dataset file (downloading it if missing) and the reader format
    to use for it (``None``: the dataset's own format). ``sha256``: the pin of the local file
    itself (``dataset.sha256``); a local file that *is* the download (no archive member) is
    also checked against ``dataset.download.sha256``."""
    download = download or {}
    local = data_dir / rel_path
    if local.is_file():
        if sha256:
            verify(local, sha256, "dataset.sha256")
        elif not download.get("member") and download.get("target", rel_path) == rel_path:
            verify(local, download.get("sha256"), "dataset.download.sha256")
        return local, None
    if not download.get("url"):
        raise DataError(f"{local}: file not found (set RECEXP_DATA_DIR or data_dir= to the folder holding it)")
    member = download.get("member")
    target = data_dir / download.get("target", rel_path)
    url = download["url"]
    archive = data_dir / "downloads" / url.rsplit("/", 1)[-1]
    if target.is_file():
        if archive.is_file():  # extracted from it: the archive's pin vouches for the member
            verify(archive, download.get("sha256"), "dataset.download.sha256")
        elif not member:
            verify(target, download.get("sha256"), "dataset.download.sha256")
        return target, download.get("format")
    if archive.is_file():
        verify(archive, download.get("sha256"), "dataset.download.sha256")
    else:
        fetch(url, archive, download.get("sha256"), allow_unverified=bool(download.get("allow_unverified")))
    if member:
        tmp = target.with_name(f".{target.name}.part")
        try:
            with leaves_no_folders(target.parent), zipfile.ZipFile(archive) as zf, zf.open(member) as src:
                target.parent.mkdir(parents=True, exist_ok=True)
                with tmp.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                tmp.replace(target)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise DataError(f"{archive}: cannot extract {member} ({exc})") from None
        finally:
            tmp.unlink(missing_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(archive, target)
    return target, download.get("format")
