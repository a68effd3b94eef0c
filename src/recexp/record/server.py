"""Team mode: a PostgreSQL-backed MLflow tracking server on 127.0.0.1, one command to start or
stop both (``make mlflow-server`` / ``make mlflow-server-stop``; tests use the same functions).

    python -m recexp.record.server start [--root runs/server] [--port 5000] [--pg-port 5433]
    python -m recexp.record.server stop  [--root runs/server]

PostgreSQL comes from the Debian ``postgresql`` package (binaries found on PATH or under
``/usr/lib/postgresql/*/bin``). It refuses to run as root, so as root the cluster is created
and run as the ``postgres`` user the package makes. Runs log to the server over HTTP; the server
stores artifacts under ``<root>/artifacts`` (``--artifacts-destination``) and serves them.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from recexp.errors import ConfigError
from recexp.record.resume import pid_alive

PG_USER = "recexp"  # the database role; trust auth, reachable on 127.0.0.1 only
PG_DB = "mlflow"


def pg_bin(name: str) -> str:
    found = shutil.which(name) or (sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [None])[-1]
    if not found:
        raise ConfigError(f"PostgreSQL's {name} not found: install it (apt-get install postgresql)")
    return found


def have_postgres() -> bool:
    """PostgreSQL's tools are installed (and, as root, the ``postgres`` user to run them as)."""
    try:
        pg_bin("initdb"), pg_bin("pg_ctl")
    except ConfigError:
        return False
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False
    return True


def _as_pg_owner(cmd: list[str]) -> list[str]:
    """PostgreSQL will not run as root: run its tools as the Debian package's ``postgres`` user."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _run(cmd: list[str], what: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"{what} failed: {tail[0]}")


def start_postgres(root: Path, port: int) -> str:
    """Create (first time) and start a cluster in ``root/pg`` listening on 127.0.0.1:``port``
    only (no Unix socket: its path length limit breaks deep folders); returns the backend URI."""
    data = root / "pg"
    if not (data / "PG_VERSION").is_file():
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
            if subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(data)]).returncode:
                raise ConfigError(f"PostgreSQL runs as user postgres, which cannot reach {data}: "
                                  "choose a --root under a folder every user may enter")
        _run(_as_pg_owner([pg_bin("initdb"), "-D", str(data), "-U", PG_USER, "-A", "trust", "-E", "UTF8",
                           "--no-sync"]), f"initdb {data}")
    log = data / "server.log"
    opts = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
    _run(_as_pg_owner([pg_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "60", "start"]),
         f"PostgreSQL start on 127.0.0.1:{port} (log: {log})")
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=port, user=PG_USER, dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DB,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {PG_DB}")
    conn.close()
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; we ship psycopg2-binary
    return f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{port}/{PG_DB}"


def stop_postgres(root: Path) -> None:
    data = root / "pg"
    if (data / "postmaster.pid").is_file():
        _run(_as_pg_owner([pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]), "PostgreSQL stop")


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def start_mlflow(root: Path, backend_uri: str, port: int, wait_s: float = 120.0) -> str:
    """Start ``mlflow server`` detached (its own session, pid in ``root/mlflow.pid``); returns its
    URL once ``/health`` answers."""
    url = f"http://127.0.0.1:{port}"
    if healthy(url):
        raise ConfigError(f"port {port} already serves an MLflow server ({url}); stop it or pick --port")
    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    log = open(root / "mlflow.log", "ab")  # noqa: SIM115 - handed to the detached server
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
           "--artifacts-destination", str((root / "artifacts").resolve()), "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (root / "mlflow.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"mlflow server exited with code {proc.returncode}; see {root / 'mlflow.log'}")
        if healthy(url):
            return url
        time.sleep(0.5)
    stop_mlflow(root)
    raise ConfigError(f"mlflow server did not answer on {url} within {wait_s:.0f}s; see {root / 'mlflow.log'}")


def stop_mlflow(root: Path) -> None:
    pidfile = root / "mlflow.pid"
    if not pidfile.is_file():
        return
    pid = int(pidfile.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)  # the server and its uvicorn workers share the session
        for _ in range(100):
            if not pid_alive(pid):
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    pidfile.unlink(missing_ok=True)


def start(root: Path, port: int, pg_port: int) -> str:
    root.mkdir(parents=True, exist_ok=True)
    uri = start_postgres(root, pg_port)
    try:
        return start_mlflow(root, uri, port)
    except BaseException:
        stop_postgres(root)
        raise


def stop(root: Path) -> None:
    stop_mlflow(root)
    stop_postgres(root)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recexp.record.server", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["start", "stop"])
    ap.add_argument("--root", type=Path, default=Path("runs/server"), help="cluster, artifacts, logs, pid files")
    ap.add_argument("--port", type=int, default=5000, help="MLflow server port on 127.0.0.1")
    ap.add_argument("--pg-port", type=int, default=5433, help="PostgreSQL port on 127.0.0.1")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    try:
        if args.action == "start":
            url = start(root, args.port, args.pg_port)
            print(f"MLflow tracking server: {url}  (PostgreSQL on 127.0.0.1:{args.pg_port}, artifacts in "
                  f"{root / 'artifacts'})\nrecord runs there with: recexp train tracking=server ...")
        else:
            stop(root)
            print(f"stopped the MLflow server and PostgreSQL under {root}")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
