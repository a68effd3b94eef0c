"""Team mode against a real PostgreSQL and a real ``mlflow server`` on 127.0.0.1 (no mocks),
and the one-line error when the server is down. Skips when PostgreSQL is not installed."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from recexp.errors import ConfigError
from recexp.jobs.train import train
from recexp.record import server
from tests.faults.helpers import all_runs, cli, free_port, split_runs

needs_pg = pytest.mark.skipif(not server.have_postgres(), reason="PostgreSQL (initdb, pg_ctl) not installed")


def test_server_down_fails_in_one_line_before_any_work(tiny_cfg, tmp_path):
    cfg = tiny_cfg("tracking=server", f"tracking.uri=http://127.0.0.1:{free_port()}")
    with pytest.raises(ConfigError, match=r"tracking.uri=http://127.0.0.1:\d+: no MLflow server answers"):
        train(cfg, tmp_path / "job")
    assert not Path(cfg.paths.cache_dir).exists()  # no data prepared, nothing trained
    assert not (tmp_path / "job" / "best.pt").exists()


def test_server_down_stops_a_sweep_before_any_job(tmp_runs):
    r = cli(["-m", "seed=1,2", "tracking=server", f"tracking.uri=http://127.0.0.1:{free_port()}"], tmp_runs)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no MLflow server answers" in r.stderr
    assert "Launching" not in r.stdout + r.stderr


@pytest.fixture(scope="module")
def mlflow_server():
    # not pytest's tmp_path: as root, PostgreSQL runs as user postgres, which must reach the folder
    root = Path(tempfile.mkdtemp(prefix="recexp-pg-"))
    root.chmod(0o755)
    try:
        url = server.start(root, free_port(), free_port())
        yield url, root
    finally:
        server.stop(root)
        shutil.rmtree(root, ignore_errors=True)


@needs_pg
def test_runs_and_artifacts_land_in_the_postgres_backed_server(mlflow_server, tiny_cfg, tmp_path):
    url, root = mlflow_server
    cfg = tiny_cfg("tracking=server", f"tracking.uri={url}", "trainer.max_epochs=2")
    metrics = train(cfg, tmp_path / "job")
    client, runs = all_runs(Path(cfg.paths.runs_dir), uri=url)
    _, jobs = split_runs(runs)
    (run,) = jobs
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test/ndcg_10"] == pytest.approx(metrics["test/ndcg_10"])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1, 2]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"metrics.json", "config.yaml"}
    assert list((root / "artifacts").rglob("metrics.json"))  # stored by the server, not the client
    # the server's store really is PostgreSQL
    assert MlflowClient(url).get_run(run.info.run_id).info.run_id == run.info.run_id
    import psycopg2

    port = int((root / "pg" / "postmaster.pid").read_text().splitlines()[3])
    with psycopg2.connect(host="127.0.0.1", port=port, user=server.PG_USER, dbname=server.PG_DB) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT status FROM runs WHERE run_uuid = %s", (run.info.run_id,))
            assert cur.fetchone() == ("FINISHED",)


@needs_pg
def test_rerun_against_the_server_skips_the_finished_run(mlflow_server, tiny_cfg, tmp_path):
    url, _ = mlflow_server
    cfg = tiny_cfg("tracking=server", f"tracking.uri={url}", "trainer.max_epochs=1", "seed=7",
                   "tracking.skip_finished=always")
    first = train(cfg, tmp_path / "a")
    again = train(cfg, tmp_path / "b")
    assert again["skipped"] == 1.0 and again["test/ndcg_10"] == pytest.approx(first["test/ndcg_10"])
    assert not (tmp_path / "b" / "best.pt").exists()
