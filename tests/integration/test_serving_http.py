"""A served model answers like a web service: every bad request is HTTP 400 with one line of JSON
(no stack trace), a valid one 200. Driven through MLflow's own scoring-server app in-process
(``mlflow.pyfunc.scoring_server.init``, called as an ASGI app), and `recexp recommend`'s options."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recexp.cli.recommend import main as recommend_main
from recexp.errors import UserError

SMALL = ["model=pop", "tracking=none", "device=cpu", "trainer.progress=false", "max_len=8",
         "dataset.generator.num_users=60", "dataset.generator.num_items=40", "dataset.generator.mean_length=6"]


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A popularity model (fit by counting: no training time) with its MLflow model folder."""
    from omegaconf import open_dict

    from recexp.jobs.train import train
    from tests.conftest import compose_cfg

    root = tmp_path_factory.mktemp("serve")
    cfg = compose_cfg(SMALL)
    with open_dict(cfg):
        cfg.paths.runs_dir, cfg.paths.cache_dir = str(root / "runs"), str(root / "cache")
    train(cfg, root / "job")
    return root / "job"


@pytest.fixture(scope="module")
def app(job: Path):
    import mlflow.pyfunc
    from mlflow.pyfunc import scoring_server

    return scoring_server.init(mlflow.pyfunc.load_model(str(job / "model")))


def post(app, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    """One POST /invocations through the ASGI app, as uvicorn would send it."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/invocations", "raw_path": b"/invocations", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    out: dict = {"status": None, "body": b""}
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # the client never disconnects first
        return {"type": "http.disconnect"}

    async def send(msg: dict) -> None:
        if msg["type"] == "http.response.start":
            out["status"] = msg["status"]
        elif msg["type"] == "http.response.body":
            out["body"] += msg.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return out["status"], out["body"].decode()


def records(*rows: dict, **extra) -> bytes:
    return json.dumps({"dataframe_records": list(rows), **extra}).encode()


def test_valid_requests_answer_200(app, job):
    from recexp.serving import bundle

    a, b = bundle.load(job).item_raw[:2]
    status, body = post(app, records({"user": "1", "k": 3}, {"user": 2, "history": [a, int(b)], "k": 2},
                                     {"history": f"{a} {b}", "keep_history": True}))
    assert status == 200, body
    got = pd.DataFrame(json.loads(body)["predictions"])
    assert got.groupby("row").size().tolist() == [3, 2, 10] and got["rank"].min() == 1
    status, body = post(app, json.dumps({"dataframe_split": {"columns": ["user", "k"], "data": [["1", 4]]}}).encode())
    assert status == 200 and len(json.loads(body)["predictions"]) == 4


@pytest.mark.parametrize(("body", "expected"), [
    (records({"user": "1", "k": 0}), "row 0: k=0: "),
    (records({"user": "1", "k": 2.7}), "row 0: k=2.7: "),
    (records({"user": "1", "k": -3}), "row 0: k=-3: "),
    (records({"user": "1", "k": "5"}), "row 0: k='5': "),
    (records({"user": "1", "k": True}), "row 0: k=True: "),
    (records({"user": "1", "k": 100000}), "more than the"),
    (records({"user": "1", "keep_history": "maybe"}), "row 0: keep_history='maybe': "),
    (records({"user": "1", "keep_history": 1}), "row 0: keep_history=1: "),
    (records({"user": "1"}, {"user": "nobody"}), "row 1: user 'nobody' is not known"),
    (records({"history": ["no-such-item"]}), "row 0: history: item 'no-such-item' is not known"),
    (records({"history": []}), "row 0: needs a 'user' or a non-empty 'history'"),
    (records({"history": {"a": 1}}), "row 0: history={'a': 1}: "),
    (records({"user": True}), "row 0: user=True: "),
    (records({"user": "1", "items": "1 2"}), "unknown column(s) items"),
    (records({"k": 3}), "'history' or a 'user' column"),
    (records(), "no rows"),
])
def test_bad_requests_answer_400_in_one_line(app, body, expected):
    status, text = post(app, body)
    assert status == 400, text
    err = json.loads(text)
    assert err["error_code"] == "INVALID_PARAMETER_VALUE" and "stack_trace" not in err
    assert expected in err["message"] and "\n" not in err["message"] and "\n" not in text


@pytest.mark.parametrize("body", [b"garbage{", b'{"foo": 1}', b"[1, 2]", b'{"dataframe_records": 5}'])
def test_malformed_bodies_answer_400_without_a_stack_trace(app, body):
    status, text = post(app, body)
    assert status == 400 and "stack_trace" not in json.loads(text) and "\n" not in text


_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-5, 200), st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from(["1", "2", "5", "", "maybe", "true", "1 2", "nobody"]), st.text(max_size=5),
                   st.lists(st.one_of(st.sampled_from(["1", "2", "3"]), st.integers(-2, 50), st.none()), max_size=3),
                   st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_ROW = st.dictionaries(st.sampled_from(["user", "history", "k", "keep_history", "extra"]), _VALUE, max_size=4)


@settings(max_examples=int(os.environ.get("RECEXP_PROPERTY_EXAMPLES", "40")), deadline=None)
@given(rows=st.lists(_ROW, max_size=3))
def test_any_request_is_200_or_a_one_line_400(app, rows):
    """Generated requests: a valid one is answered, any other is 400 with one line, never a 500."""
    status, text = post(app, json.dumps({"dataframe_records": rows}).encode())
    assert status in (200, 400), text
    body = json.loads(text)
    if status == 400:
        assert "stack_trace" not in body and "\n" not in body["message"], body
    else:
        got = pd.DataFrame(body["predictions"])
        assert len(rows) >= 1 and (got.empty or got["rank"].min() == 1)


def test_predict_raises_a_user_error(job):
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(str(job / "model"))
    with pytest.raises(UserError, match=r"row 0: k=0"):
        model.predict(pd.DataFrame({"user": ["1"], "k": [0]}))
    gap = model.predict(pd.DataFrame({"user": ["1", "2"], "k": [2, None]}))  # pandas: k is 2.0, NaN
    assert gap.groupby("row").size().tolist() == [2, 10]


@pytest.mark.parametrize(("argv", "message"), [
    (["--batch-size", "0"], "--batch-size=0: must be at least 1"),
    (["--batch-size", "-1"], "--batch-size=-1: must be at least 1"),
    (["--users", ""], "--users '': no user id given"),
    (["--history", " "], "--history ' ': no item id in it"),
])
def test_recommend_options_are_checked_first(job, capsys, argv, message):
    assert recommend_main([str(job), *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err and "Traceback" not in err and err.count("\n") == 1


def test_recommend_out_into_a_missing_folder(job, tmp_path, capsys):
    out = tmp_path / "new" / "folder" / "top.csv"
    assert recommend_main([str(job), "--users", "1", "2", "--k", "3", "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 6
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert recommend_main([str(job), "--out", str(blocked / "top.csv")]) == 2
    assert "cannot write it" in capsys.readouterr().err
