"""The MLflow UI as recexp opens it, in a real (headless) browser: a tiny run trained into a fresh
store, `recexp ui` on a free port of 127.0.0.1, its printed address opened in Chromium; the landing
page must be the training runs with recexp's columns and the run's figures, and a screenshot of it
is kept as docs/img/mlflow_runs.png (docs/ui.md shows it).

Opt-in (marker ``browser``; `make test-browser` installs Chromium and Playwright and runs it);
skipped when either is missing. Playwright drives Debian's Chromium by its path: its own browser
download cannot work offline."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = REPO / "docs" / "img" / "mlflow_runs.png"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"]
#: what the landing view must show without a click: identifying columns, then the figures
HEADERS = ["dataset", "model", "loss", "sampler", "seed", "test/ndcg_10", "test/hr_10", "valid/ndcg_10",
           "valid/hr_10", "best_epoch", "minutes"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def trained(tiny_cfg, tmp_runs: Path) -> dict:
    from mlflow.tracking import MlflowClient

    from recexp.jobs.train import train

    cfg = tiny_cfg("model=sasrec", "trainer.max_epochs=3", "seed=7")
    metrics = train(cfg, tmp_runs / "job")
    uri = f"sqlite:///{tmp_runs / 'mlflow.db'}"
    (run,) = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("recexp").experiment_id])
    return {"uri": uri, "metrics": metrics, "run": run, "runs": tmp_runs}


@pytest.fixture
def ui(trained: dict):
    """`recexp ui` as a user runs it; yields the address it printed."""
    pytest.importorskip("playwright.sync_api", reason="playwright not installed (make test-browser)")
    if not Path(CHROMIUM).is_file():
        pytest.skip("chromium not installed (apt-get install chromium; make test-browser)")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {"RECEXP_RUNS_DIR": str(trained["runs"]), "PYTHONPATH": str(REPO / "src")}
    out = trained["runs"] / "ui.out"
    with out.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "recexp.cli", "ui", "--port", str(port), "--uri", trained["uri"]],
                                stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300  # ~10 s on a quiet machine, minutes on a loaded one
        while "/#/experiments/" not in out.read_text():
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, f"recexp ui printed no address within 300 s: {out.read_text()}"
            time.sleep(0.5)
        url = next(w for w in out.read_text().split() if "/#/experiments/" in w)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def test_landing_page_shows_the_training_runs_with_recexp_columns(trained, ui):
    from playwright.sync_api import sync_playwright

    assert ui.startswith("http://127.0.0.1:") and "workflowType=machine_learning" in ui
    run, metrics = trained["run"], trained["metrics"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1920, "height": 640})
            page.goto(ui)
            page.get_by_text(run.info.run_name).first.wait_for(timeout=120_000)
            page.locator('[col-id="metrics.`test/ndcg_10`"]').first.wait_for(timeout=60_000)
            close = page.get_by_role("button", name="Close")  # MLflow's assistant panel opens on a first visit
            if close.count():
                close.first.click()
            page.get_by_role("button", name="Hide banner").first.click()  # "you're viewing a shared view"
            time.sleep(1.5)  # the grid re-lays its columns once the panel is gone
            cells = page.eval_on_selector_all(  # in screen order (the grid's DOM order is not)
                ".ag-header-cell", "els => els.map(e => [e.getBoundingClientRect().left, e.innerText.trim()])")
            headers = [name for _, name in sorted(cells)]
            text = page.inner_text("body")
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()
    assert "Model training" in text and "Welcome to MLflow" not in text and "Runs" in text  # not the GenAI pages
    missing = [h for h in HEADERS if h not in headers]
    assert not missing, f"columns not shown: {missing} (shown: {headers})"
    assert headers.index("model") < headers.index("test/ndcg_10")  # what the run is, then its figures
    value = str(metrics["test/ndcg_10"])  # the grid shows the logged value as it is
    assert value[:7] in text, f"test/ndcg_10 {value} not on the page"
    assert run.data.tags["model"] == "sasrec" and run.data.tags["loss"] == "ce" and "sasrec" in text
    assert SCREENSHOT.stat().st_size > 20_000
