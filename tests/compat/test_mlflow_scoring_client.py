"""The mlflow package's own scoring client — 3.x and the last 2.x, each from its own
virtualenv (never imported here) — against a live `cairn serve`: `ScoringServerClient`
(ping, version, invoke with a DataFrame, an array, a list, params), the payload
`convert_input_example_to_serving_input` writes, and the request shapes MLflow's docs
show (records, instances, CSV) sent with `requests`. Their predictions equal
`load_model(...).predict`; a schema violation fails the client with the 422."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.mlflow_client import run_client
from tests.serve_process import (
    IRIS_COLUMNS,
    LiveScoring,
    ServedModels,
    models_in_a_home,
    serving,
)

pytestmark = pytest.mark.slow

SCRIPT = """
import json

import numpy as np
import pandas as pd
import requests
from mlflow.models import convert_input_example_to_serving_input
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

host, port = {host!r}, {port}
url = f"http://{{host}}:{{port}}"
frame = pd.DataFrame({rows!r}, columns={columns!r})
client = ScoringServerClient(host, port)
client.wait_server_ready(timeout=30)

def ndarray(response):
    return response.get_predictions(predictions_format="ndarray").tolist()

out = {{"version": client.get_version()}}
out["client dataframe"] = ndarray(client.invoke(frame))
out["client dataframe with params"] = ndarray(client.invoke(frame, params={{"k": 1}}))
out["client ndarray"] = ndarray(client.invoke(frame.to_numpy()))
out["client list"] = ndarray(client.invoke(frame.to_numpy().tolist()))
out["client dataframe as frame"] = client.invoke(frame).get_predictions().iloc[:, 0].tolist()

def post(body, content_type="application/json"):
    answer = requests.post(url + "/invocations", data=body,
                           headers={{"Content-Type": content_type}})
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]

out["serving input example"] = post(convert_input_example_to_serving_input(frame))
out["docs records"] = post(json.dumps({{"dataframe_records": frame.to_dict(orient="records")}}))
out["docs split"] = post(json.dumps({{"dataframe_split": frame.to_dict(orient="split")}}))
out["docs instances"] = post(json.dumps({{"instances": frame.to_numpy().tolist()}}))
out["docs inputs"] = post(json.dumps({{"inputs": frame.to_dict(orient="list")}}))
out["docs csv"] = post(frame.to_csv(index=False), "text/csv")

bad = frame.astype(object)
bad.iloc[0, 3] = "wide"
try:
    client.invoke(bad)
    out["refused"] = None
except Exception as e:
    out["refused"] = str(e)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedModels]:
    with models_in_a_home(tmp_path_factory, "scoring") as models:
        yield models


@pytest.fixture(scope="module")
def live(models: ServedModels) -> Iterator[LiveScoring]:
    with serving("models:/iris/1", models.root) as server:
        yield server


def test_the_mlflow_scoring_client_gets_what_load_model_predicts(
        client_python: Path, models: ServedModels, live: LiveScoring,
        tmp_path: Path) -> None:
    host, port = live.url.removeprefix("http://").rsplit(":", 1)
    script = SCRIPT.format(host=host, port=int(port), rows=models.rows, columns=IRIS_COLUMNS)
    out = run_client(client_python, live.url, tmp_path, script, live.output())
    import cairn

    assert json.loads(out.pop("version")) == {"version": cairn.__version__}
    refusal = out.pop("refused")
    assert refusal is not None and "error code 422" in refusal
    assert "petal width (cm)" in refusal and "float64" in refusal
    assert out == dict.fromkeys(out, models.expected["iris"])
    assert len(out) == 11
