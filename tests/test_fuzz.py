"""Hostile input, generated: every params key given the wrong type, NaN, ±inf, a huge, negative or empty value, and
the server's API given malformed calls; each is accepted or refused in one line, never with a traceback."""

from __future__ import annotations

import dataclasses
import json
import math
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.middleware import Middleware

from actrec.params import Params, ParamsError, parse_params
from actrec.serving.gate import Gate
from tests.helpers import ROOT

SECTIONS = {f.name: f.type for f in dataclasses.fields(Params)}
KEYS = [
    (section.name, key.name)
    for section in dataclasses.fields(Params)
    if dataclasses.is_dataclass(getattr(Params(), section.name))
    for key in dataclasses.fields(getattr(Params(), section.name))
]
HOSTILE = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 10**30, -(10**30), 1e300, -1, -0.5, 0, "", [], {}, None]),
    st.sampled_from([True, "ten", ".nan", "1e400", "a\nb", "\0", [None], {"a": 1}, [[1]], {1: 2}]),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
)


def _one_line(data: dict) -> None:
    try:
        parse_params(data)
    except ParamsError as err:
        message = str(err)
        assert message.startswith("params: ") and "\n" not in message and len(message) < 1200, message


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(KEYS), value=HOSTILE)
def test_every_key_given_a_hostile_value_is_accepted_or_refused_in_one_line(key: tuple[str, str], value) -> None:
    section, name = key
    _one_line({section: {name: value}})


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(["seed", *SECTIONS, "extrct", ""]), value=HOSTILE)
def test_a_hostile_seed_or_section_is_refused_in_one_line(name: str, value) -> None:
    _one_line({name: value})


@pytest.mark.parametrize(
    "edit, says",
    [
        ("printf '\\nextrct:\\n  frames: 8\\n' >> params.yaml", "unknown key 'extrct'"),
        ("sed -i 's/^  epochs: 60/  epochs: ten/' params.yaml", "train.epochs = 'ten' is not allowed"),
        ("sed -i 's/^  lr: 0.001 /  lr: .nan /' params.yaml", "train.lr = nan is not allowed"),
        ("sed -i '/^  root: /d' params.yaml", "params.yaml has no dataset.root (default 'data/demo')"),
        (": > params.yaml", "params.yaml has no seed"),
    ],
)
def test_the_params_stage_refuses_the_whole_file_in_one_line(tmp_path: Path, edit: str, says: str) -> None:
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    subprocess.run(edit, shell=True, cwd=tmp_path, check=True)
    command = [sys.executable, "-m", "pipeline.params", "--out", "data/params.ok"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and not (tmp_path / "data/params.ok").exists()


# The server's door: a page with the inputs of `actrec serve` (a file upload, a dropdown of test clips), its
# handlers trivial; what is under test is that a malformed call never reaches them, nor Gradio's queue.


@pytest.fixture(scope="module")
def page() -> Iterator[str]:
    with gr.Blocks() as blocks:
        upload, clip, out = gr.File(), gr.Dropdown(choices=["a (actual A)", "b (actual B)"]), gr.Textbox()
        upload.upload(lambda f: "ok", upload, out, api_name="predict")
        clip.input(lambda c: f"clip {c}", clip, out, api_name="predict_test_clip")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    blocks.queue().launch(
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        app_kwargs={"middleware": [Middleware(Gate, page=blocks)]},
    )
    yield f"http://127.0.0.1:{port}/gradio_api"
    blocks.close()


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
BODIES = st.one_of(
    JSON.map(lambda data: json.dumps({"data": data})),
    st.builds(lambda d, i: json.dumps({"data": d, "fn_index": i, "session_hash": "s"}), JSON, JSON),
    JSON.map(json.dumps),
    st.binary(max_size=20).map(lambda b: b.decode("latin-1")),
)
ROUTES = st.sampled_from(["call/predict", "call/predict_test_clip", "call/nope", "run/predict", "queue/join"])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=ROUTES, body=BODIES)
def test_a_malformed_api_call_gets_a_4xx_in_one_line_and_no_traceback(
    page: str, capfd: pytest.CaptureFixture, route: str, body: str
) -> None:
    status, answer = _post(f"{page}/{route}", body.encode("utf-8", "surrogatepass"))
    assert status < 500, answer
    if status >= 400 and answer.startswith(b'{"error"'):
        assert b"\n" not in answer and len(json.loads(answer)["error"]) < 400
    assert "Traceback" not in capfd.readouterr().err


def test_the_door_names_what_is_wrong(page: str) -> None:
    cases = {
        ("call/nope", '{"data": [1]}'): (404, "no API endpoint 'nope'; this server has: predict, predict_test_clip"),
        ("call/predict", '{"data": [1]}'): (400, "predict: input 1 is not a File value"),
        ("call/predict", '{"data": [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}]}'): (
            400,
            "predict: input 1 names a file this server did not receive; upload it first",
        ),
        ("call/predict_test_clip", '{"data": ["c"]}'): (400, "input 1 is not one of the 2 choices the page offers"),
        ("call/predict", "{"): (400, "the body is not JSON"),
        ("queue/join", '{"data": [1], "fn_index": 99}'): (404, "no function 99 on this page"),
    }
    for (route, body), (status, says) in cases.items():
        got, answer = _post(f"{page}/{route}", body.encode())
        assert got == status and says in json.loads(answer)["error"], (route, body, answer)
    assert _post(f"{page}/call/predict_test_clip", b'{"data": ["a (actual A)"]}')[0] == 200


def test_the_shipped_params_pass_the_schema() -> None:
    assert parse_params(yaml.safe_load((ROOT / "params.yaml").read_text())) == Params()
