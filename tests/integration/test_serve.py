"""`cairn serve` over real HTTP on 127.0.0.1: every scoring format predicts what
`load_model(...).predict` predicts; bad input gets one 4xx JSON answer (422 naming the
column or tensor and its type), never a 500; concurrent requests share predict calls."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CliRepo
from tests.serve_process import (
    IRIS_COLUMNS,
    LiveScoring,
    ServedModels,
    make_package,
    models_in_a_home,
    refused,
    serving,
)

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedModels]:
    with models_in_a_home(tmp_path_factory, "serve") as models:
        yield models


@pytest.fixture(scope="module")
def package(models: ServedModels) -> Path:
    return make_package(models, batch_size=16)


@pytest.fixture(scope="module")
def columns_server(models: ServedModels) -> Iterator[LiveScoring]:
    with serving("models:/iris/1", models.root) as live:
        yield live


@pytest.fixture(scope="module")
def tensor_server(models: ServedModels) -> Iterator[LiveScoring]:
    """The array model, with a small body limit and a batch window wide enough that
    concurrent requests always meet in one batch."""
    with serving("models:/iris-np/1", models.root, "--max-body", "4096",
                 "--batch-wait-ms", "50", "--batch-size", "64") as live:
        yield live


def post(live: LiveScoring, body: Any, path: str = "/invocations",
         headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, str | bytes) else json.dumps(body)
    return httpx.post(live.url + path, content=content, headers=headers or JSON, timeout=30)


def csv_body(rows: list[list[float]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(IRIS_COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


def bodies(rows: list[list[float]]) -> dict[str, Any]:
    records = [dict(zip(IRIS_COLUMNS, row, strict=True)) for row in rows]
    by_column = {c: [row[i] for row in rows] for i, c in enumerate(IRIS_COLUMNS)}
    return {
        "dataframe_split": {"dataframe_split": {"columns": IRIS_COLUMNS, "data": rows}},
        "dataframe_split with index": {"dataframe_split": {
            "index": list(range(len(rows))), "columns": IRIS_COLUMNS, "data": rows}},
        "dataframe_records": {"dataframe_records": records},
        "instances as records": {"instances": records},
        "instances as rows": {"instances": rows},
        "inputs as columns": {"inputs": by_column},
        "inputs as rows": {"inputs": rows},
        "with params": {"dataframe_split": {"columns": IRIS_COLUMNS, "data": rows},
                        "params": {"threshold": 0.5}},
    }


FORMATS = list(bodies([[0.0] * 4]))


@pytest.mark.parametrize("form", FORMATS)
def test_every_json_format_predicts_what_load_model_predicts(
        models: ServedModels, columns_server: LiveScoring, tensor_server: LiveScoring,
        form: str) -> None:
    body = bodies(models.rows)[form]
    for live, name in ((columns_server, "iris"), (tensor_server, "iris-np")):
        answer = post(live, body)
        assert answer.status_code == 200, (name, answer.text)
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {"predictions": models.expected[name]}, name


def test_csv_predicts_what_load_model_predicts(models: ServedModels,
                                               columns_server: LiveScoring,
                                               tensor_server: LiveScoring) -> None:
    for live, name in ((columns_server, "iris"), (tensor_server, "iris-np")):
        answer = post(live, csv_body(models.rows),
                      headers={"Content-Type": "text/csv; charset=utf-8"})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": models.expected[name]}


def test_predict_takes_a_bare_array_and_names_the_digest(models: ServedModels,
                                                         columns_server: LiveScoring) -> None:
    answer = post(columns_server, models.rows, path="/predict")
    assert answer.status_code == 200, answer.text
    digest = httpx.get(columns_server.url + "/metadata").json()["digest"]
    assert answer.json() == {"predictions": models.expected["iris"], "digest": digest}


def test_schema_violations_get_422_naming_the_column_and_its_type(
        models: ServedModels, columns_server: LiveScoring) -> None:
    records = [dict(zip(IRIS_COLUMNS, row, strict=True)) for row in models.rows[:2]]
    records[1]["petal width (cm)"] = "wide"
    answer = post(columns_server, {"dataframe_records": records})
    assert answer.status_code == 422
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    message = answer.json()["message"]
    assert "'petal width (cm)'" in message and "float64" in message

    missing = post(columns_server, {"dataframe_split": {"columns": IRIS_COLUMNS[:3],
                                                        "data": [r[:3] for r in models.rows]}})
    assert missing.status_code == 422
    assert "missing column 'petal width (cm)'" in missing.json()["message"]

    narrow = post(columns_server, {"inputs": [[1.0, 2.0]]})
    assert narrow.status_code == 422 and "4 columns" in narrow.json()["message"]


def test_a_tensor_model_names_the_shape_it_expects(tensor_server: LiveScoring) -> None:
    answer = post(tensor_server, {"inputs": [[1.0, 2.0, 3.0]]})
    assert answer.status_code == 422
    assert "shape (1, 3)" in answer.json()["message"] and "('any', 4)" in answer.json()["message"]
    strings = post(tensor_server, {"inputs": [["a", "b", "c", "d"]]})
    assert strings.status_code == 422 and "float64" in strings.json()["message"]


BAD_BODIES = [
    ("malformed JSON", b'{"inputs": [[1, 2', JSON, 400, "not valid JSON"),
    ("a JSON array", b"[[1, 2, 3, 4]]", JSON, 400, "exactly one of"),
    ("no format key", b'{"data": [[1, 2, 3, 4]]}', JSON, 400, "keys found: 'data'"),
    ("two format keys", b'{"inputs": [[1]], "instances": [[1]]}', JSON, 400, "exactly one"),
    ("split without data", b'{"dataframe_split": {"columns": ["a"]}}', JSON, 400, "'data'"),
    ("ragged rows", b'{"dataframe_split": {"data": [[1, 2], [1]]}}', JSON, 400, "row 2"),
    ("records not a list", b'{"dataframe_records": {"a": 1}}', JSON, 400, "list of records"),
    ("params not an object", b'{"inputs": [[1]], "params": 3}', JSON, 400, "'params'"),
    ("not UTF-8", b'{"inputs": "\xff"}', JSON, 400, "not UTF-8"),
    ("text/plain", b"1,2,3,4", {"Content-Type": "text/plain"}, 415, "text/csv"),
    ("form", b"a=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "send"),
    ("no Content-Type", b"{}", {}, 415, "no Content-Type"),
    ("latin-1", b"{}", {"Content-Type": "application/json; charset=latin-1"}, 415, "UTF-8"),
    ("odd parameter", b"{}", {"Content-Type": "application/json; format=pandas-split"}, 415,
     "format"),
    ("CSV header only", b"a,b\n", {"Content-Type": "text/csv"}, 400, "at least one row"),
]


@pytest.mark.parametrize(("what", "body", "headers", "status", "says"), BAD_BODIES,
                         ids=[b[0] for b in BAD_BODIES])
def test_bad_requests_get_one_4xx_json_message(columns_server: LiveScoring, what: str,
                                               body: bytes, headers: dict[str, str],
                                               status: int, says: str) -> None:
    answer = httpx.post(columns_server.url + "/invocations", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error_code", "message"}
    assert says in answer.json()["message"]


def test_a_body_over_the_limit_is_413_also_when_streamed(tensor_server: LiveScoring) -> None:
    big = json.dumps({"inputs": [[1.0, 2.0, 3.0, 4.0]] * 400}).encode()
    assert len(big) > 4096
    declared = post(tensor_server, big)
    assert declared.status_code == 413
    assert declared.json()["error_code"] == "RESOURCE_LIMIT_EXCEEDED"
    assert "--max-body" in declared.json()["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 512):
            yield big[start:start + 512]

    streamed = httpx.post(tensor_server.url + "/invocations", content=chunks(), headers=JSON)
    assert streamed.status_code == 413
    assert post(tensor_server, {"inputs": [[1.0, 2.0, 3.0, 4.0]]}).status_code == 200


def test_concurrent_requests_share_predict_calls_and_keep_their_own_answers(
        models: ServedModels, tensor_server: LiveScoring) -> None:
    before = httpx.get(tensor_server.url + "/metadata").json()["predict_calls"]
    good = {"inputs": models.rows}
    bad = {"inputs": [["x", 1.0, 2.0, 3.0]] * 2}
    requests = [bad if n == 5 else good for n in range(16)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda body: post(tensor_server, body), requests))
    for n, answer in enumerate(answers):
        if n == 5:
            assert answer.status_code == 422, answer.text
        else:
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"predictions": models.expected["iris-np"]}
    calls = httpx.get(tensor_server.url + "/metadata").json()["predict_calls"] - before
    # 16 requests of 10 rows in batches of up to 64 rows: far fewer calls than requests
    assert calls < 16


def test_health_ping_version_and_metadata(models: ServedModels,
                                          columns_server: LiveScoring) -> None:
    import cairn

    for path in ("/health", "/ping"):
        assert httpx.get(columns_server.url + path).json() == {"status": "ok"}
    assert httpx.get(columns_server.url + "/version").json() == {"version": cairn.__version__}
    meta = httpx.get(columns_server.url + "/metadata").json()
    assert meta["kind"] == "model" and meta["source"] == "models:/iris/1"
    assert meta["model"]["name"] == "iris" and meta["model"]["version"] == 1
    assert len(meta["digest"]) == 64 and meta["lineage"]["digest"] == meta["digest"]
    assert meta["lineage"]["run_id"] == meta["model"]["run_id"]
    assert [c["name"] for c in meta["signature"]["inputs"]["columns"]] == IRIS_COLUMNS
    assert meta["batch_size"] == 64
    assert "Serving iris v1" in columns_server.output()


def test_a_page_reaching_the_server_by_another_name_is_refused(
        columns_server: LiveScoring) -> None:
    answer = httpx.post(columns_server.url + "/invocations", content=b"{}",
                        headers={**JSON, "Host": "attacker.example"})
    assert answer.status_code == 400 and "DNS rebinding" in answer.json()["message"]
    assert httpx.get(columns_server.url + "/health",
                     headers={"Host": "attacker.example"}).status_code == 200


def test_an_alias_is_served_as_the_version_it_named_in_every_worker(
        models: ServedModels) -> None:
    repo = CliRepo(models.root)
    done = repo.cairn_process("models", "alias", "iris", "champion", "1")
    assert done.returncode == 0, done.stderr
    with serving("models:/iris@champion", models.root,
                 "--workers", "2") as live:
        for _ in range(6):  # a few connections: both workers answer
            with httpx.Client() as client:
                answer = client.post(live.url + "/invocations", headers=JSON,
                                     content=json.dumps({"inputs": models.rows}))
                assert answer.json() == {"predictions": models.expected["iris"]}
        meta = httpx.get(live.url + "/metadata").json()
        assert meta["model"]["version"] == 1 and meta["source"] == "models:/iris/1"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_only_this_machine_may_connect_unless_told(repo: CliRepo, host: str) -> None:
    answer = repo.cairn("serve", "models:/iris/1", "--host", host, ok=False)
    assert answer.exit_code == 2
    assert f"refusing to serve on {host}" in answer.stderr
    assert "--allow-unauthenticated" in answer.stderr


def test_a_model_that_cannot_be_opened_stops_the_server_with_one_line(
        models: ServedModels, tmp_path: Path) -> None:
    missing = refused("models:/no-such-model/1", models.root)
    assert missing.returncode != 0 and "no-such-model" in missing.stderr
    assert "Traceback" not in missing.stderr
    key = tmp_path / "key.pub"
    key.write_text("not a key")
    with_key = refused("models:/iris/1", models.root, "--key", str(key))
    assert with_key.returncode == 2 and "is not a package" in with_key.stderr


# -- packages ------------------------------------------------------------------------------

def test_a_package_is_served_from_an_empty_directory_with_its_manifest(
        models: ServedModels, package: Path, tmp_path: Path) -> None:
    from cairn.packaging.verify import verify_package

    manifest = verify_package(package)
    nowhere = tmp_path / "empty"  # no project, no registry: the package is all there is
    nowhere.mkdir()
    with serving(str(package), nowhere) as live:
        answer = post(live, {"dataframe_split": {"columns": IRIS_COLUMNS,
                                                 "data": models.rows}})
        assert answer.json() == {"predictions": models.expected["iris"]}
        meta = httpx.get(live.url + "/metadata").json()
    assert meta["kind"] == "package" and meta["digest"] == manifest.digest
    assert meta["model"]["name"] == "iris" and meta["model"]["version"] == 1
    assert meta["batch_size"] == 16 == manifest.serving["batch_size"]  # from serving.yaml
    assert meta["lineage"]["digest"] == manifest.model["digest"]
    assert meta["package_version"] == manifest.package_version


def test_a_signed_package_starts_with_its_key_and_never_with_another(
        models: ServedModels, package: Path, tmp_path: Path) -> None:
    from cairn.packaging.sign import keygen, sign_package

    signed = tmp_path / package.name
    signed.write_bytes(package.read_bytes())
    keygen(tmp_path / "team.key", tmp_path / "team.pub")
    keygen(tmp_path / "other.key", tmp_path / "other.pub")
    sign_package(signed, tmp_path / "team.key")
    with serving(str(signed), tmp_path, "--key", str(tmp_path / "team.pub")) as live:
        assert post(live, {"inputs": models.rows}).json() == {
            "predictions": models.expected["iris"]}
    other = refused(str(signed), tmp_path, "--key", str(tmp_path / "other.pub"))
    assert other.returncode != 0 and "is not signed by key" in other.stderr
    assert "Traceback" not in other.stderr and "Serving" not in other.stdout


@pytest.mark.parametrize("where", [0.1, 0.5, 0.9])
def test_a_tampered_package_refuses_to_start(package: Path, tmp_path: Path,
                                             where: float) -> None:
    data = bytearray(package.read_bytes())
    at = int(len(data) * where)
    data[at] ^= 0x01
    tampered = tmp_path / package.name
    tampered.write_bytes(bytes(data))
    done = refused(str(tampered), tmp_path)
    assert done.returncode != 0, done.stdout
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "Serving" not in done.stdout


ODD_BODIES = [
    b'{"inputs": [[1e400, 2, 3, 4]]}', b'{"inputs": [[NaN, 2, 3, 4]]}',
    b'{"inputs": [[null, null, null, null]]}', b'{"inputs": [[true, false, true, false]]}',
    b'{"inputs": [[{"a": 1}, 2, 3, 4]]}', b'{"inputs": [[[1], [2], [3], [4]]]}',
    b'{"inputs": [[1, 2, 3, 4], [1, 2]]}', b'{"inputs": []}', b'{"inputs": {}}',
    b'{"inputs": 7}', b'{"inputs": "text"}', b'{"inputs": [' * 2000 + b']' * 2000 + b'}',
    b'{"instances": [{"a": 1}, [1, 2]]}', b'{"dataframe_records": [{}]}',
    b'{"dataframe_split": {"columns": [1, 2, 3, 4], "data": [[1, 2, 3, 4]]}}',
    b'{"dataframe_split": {"columns": ["x", "x"], "data": [[1, 2]]}}',
    b'{"dataframe_split": {"columns": null, "data": [[1, 2, 3, 4]]}}',
    b'{"dataframe_split": {"data": [1, 2, 3, 4]}}', b'{"inputs": [[1, 2, 3, 4]], "params": {}}',
    b'{"inputs": [[99999999999999999999999, 2, 3, 4]]}', b"\xef\xbb\xbf{}", b"", b"null",
]


@pytest.mark.parametrize("body", ODD_BODIES, ids=[f"odd{n}" for n in range(len(ODD_BODIES))])
def test_odd_bodies_are_answered_never_with_a_500(columns_server: LiveScoring,
                                                  tensor_server: LiveScoring,
                                                  body: bytes) -> None:
    for live in (columns_server, tensor_server):
        answer = httpx.post(live.url + "/invocations", content=body, headers=JSON)
        assert answer.status_code < 500, (live.url, answer.text)
        if answer.status_code != 200:
            assert set(answer.json()) == {"error_code", "message"}
    assert httpx.get(tensor_server.url + "/health").status_code == 200
