"""A live `cairn server` refuses what would reach outside its store or act for another
site: each attack answered 4xx with the server's error JSON, and nothing written or
read outside the store (the directory around it is compared before and after, and a
secret file beside the store never appears in an answer).

Requests that must reach the server byte for byte (traversal, Host) go over a raw
socket: httpx and http.client would normalise their paths or their Host header.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import CliRepo
from tests.server_process import HOST, LiveServer, running

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
API = "/api/2.0/mlflow"
SECRET = b"the-secret-beside-the-store\n"
PWNED = b"pwned-by-a-traversal"
LIMIT = 16 << 20  # ServerConfig's default max_json_body


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Target:
    server: LiveServer
    root: Path  # the test's directory: the store, the database, and outside/secret.txt
    experiment: str
    run: str

    @property
    def port(self) -> int:
        return int(self.server.url.rsplit(":", 1)[1])

    @property
    def run_root(self) -> str:
        return f"{self.experiment}/{self.run}/artifacts"


def raw(target: Target, method: str, path: str, body: bytes = b"",
        headers: dict[str, str | None] | None = None, version: str = "HTTP/1.1") -> Answer:
    """One request, its request line and headers exactly as given (None drops one)."""
    fields = {"Host": f"{HOST}:{target.port}", "Content-Length": str(len(body)),
              "Connection": "close", **(headers or {})}
    head = f"{method} {path} {version}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in fields.items() if v is not None) + "\r\n"
    with socket.create_connection((HOST, target.port), timeout=30) as sock:
        sock.sendall(head.encode("utf-8") + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return Answer(response.status, response.read())


def refused(answer: Answer, *statuses: int) -> dict[str, Any]:
    """The answer is a 4xx (one of `statuses` if given) in the server's error JSON."""
    assert 400 <= answer.status < 500, (answer.status, answer.body[:300])
    if statuses:
        assert answer.status in statuses, (answer.status, answer.body[:300])
    found: dict[str, Any] = answer.json()
    assert set(found) >= {"error_code", "message"} and found["message"], found
    assert SECRET.strip() not in answer.body
    return found


def around_the_store(root: Path) -> dict[str, bytes]:
    """Every file under the test's directory but the store and the server's own files."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == "server-artifacts" or rel.name.startswith(("team.db", "server-")):
            continue
        found[str(rel)] = b"<dir>" if path.is_dir() else (
            f"-> {os.readlink(path)}".encode() if path.is_symlink() else path.read_bytes())
    return found


def holding(base: Path, marker: bytes) -> list[Path]:
    """The files under `base` whose bytes contain `marker`."""
    return [p for p in base.rglob("*") if p.is_file() and not p.is_symlink()
            and marker in p.read_bytes()]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    # A box of its own: `untouched` searches the box's parent for attack bytes, which
    # must not be the session's whole temp directory (every other test's files).
    root = tmp_path_factory.mktemp("security") / "box"
    root.mkdir()
    (root / "outside").mkdir()
    (root / "outside" / "secret.txt").write_bytes(SECRET)
    with running(f"sqlite:///{root / 'team.db'}", root) as server:
        experiment = httpx.post(f"{server.url}{API}/experiments/create",
                                json={"name": "attacked"}).json()["experiment_id"]
        run = httpx.post(f"{server.url}{API}/runs/create",
                         json={"experiment_id": experiment}).json()["run"]["info"]["run_id"]
        yield Target(server, root, experiment, run)


@pytest.fixture
def untouched(target: Target) -> Iterator[None]:
    """Nothing around the store changes, and no attack's bytes land anywhere."""
    before = around_the_store(target.root)
    yield
    assert around_the_store(target.root) == before
    assert holding(target.root.parent, PWNED) == []


# -- artifact paths ------------------------------------------------------------------------

def secret_relative(target: Target) -> str:
    return os.path.relpath(target.root / "outside" / "secret.txt",
                           target.root / "server-artifacts" / "objects" / "ab")


TRAVERSALS = {
    "dot-dot": "../../../../outside/secret.txt",
    "dot-dot inside": "model/../../../../../outside/secret.txt",
    "dot-dot to the store's parent": "{relative}",
    "absolute": "/{secret}",
    "absolute after a slash": "model//{secret}",
    "encoded dots": "%2e%2e/%2e%2e/%2e%2e/outside/secret.txt",
    "encoded slashes": "..%2f..%2f..%2foutside%2fsecret.txt",
    "encoded backslashes": "..%5c..%5coutside%5csecret.txt",
    "double-encoded dots": "%252e%252e/%252e%252e/outside/secret.txt",
    "double-encoded slashes": "..%252f..%252foutside%252fsecret.txt",
    "backslashes": "..\\..\\..\\outside\\secret.txt",
    "backslashes inside": "model\\..\\..\\..\\outside\\secret.txt",
    "hash": "model#/../../../../outside/secret.txt",
    "encoded hash": "model%23/../../../../outside/secret.txt",
    "semicolon": "..;/..;/..;/outside/secret.txt",
    "encoded semicolon": "..%3b/..%3b/..%3b/outside/secret.txt",
    "semicolon inside": "model;/../../../../outside/secret.txt",
    "semicolon, one climb": "model/..;/secret.txt",
    "hash, no climb": "model#secret.txt",
    "NUL": "model/secret.txt%00.png",
}


def attack_path(target: Target, pattern: str) -> str:
    return pattern.format(relative=secret_relative(target),
                          secret=str(target.root / "outside" / "secret.txt").lstrip("/"))


def artifact_urls(target: Target, bad: str) -> list[str]:
    """The attack inside a run's artifact root, and at the top of the artifact routes."""
    return [f"{ARTIFACTS}/{target.run_root}/{bad}", f"{ARTIFACTS}/{bad}"]


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize("pattern", list(TRAVERSALS.values()), ids=list(TRAVERSALS))
@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
def test_an_artifact_path_that_leaves_the_store_is_refused(target: Target, pattern: str,
                                                           method: str) -> None:
    bad = attack_path(target, pattern)
    for url in artifact_urls(target, bad):
        body = PWNED if method == "PUT" else b""
        refused(raw(target, method, url, body, {"Content-Type": "application/octet-stream"}))
    assert httpx.get(f"{target.server.url}{API}/artifacts/list",
                     params={"run_id": target.run}).json()["files"] == []


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize("pattern", list(TRAVERSALS.values()), ids=list(TRAVERSALS))
def test_listing_a_path_that_leaves_the_store_is_refused(target: Target, pattern: str) -> None:
    bad = attack_path(target, pattern)
    for value in (f"{target.run_root}/{bad}", bad):
        # once as the client sends it (encoded), once as raw bytes in the request line
        refused(raw(target, "GET", f"{ARTIFACTS}?path={quote(value, safe='')}"), 400, 404)
        refused(raw(target, "GET", f"{ARTIFACTS}?path={value}"), 400, 404)
    refused(raw(target, "GET", f"{API}/artifacts/list?run_id={target.run}&path="
                               f"{quote(bad, safe='')}"), 400)


def test_a_good_path_still_works_over_the_same_socket(target: Target) -> None:
    """The refusals above are about the paths: the same requests with a plain path work."""
    url = f"{ARTIFACTS}/{target.run_root}/ok/fine.txt"
    assert raw(target, "PUT", url, b"fine", {"Content-Type": "text/plain"}).status == 200
    assert raw(target, "GET", url).body == b"fine"
    listed = raw(target, "GET", f"{ARTIFACTS}?path={target.run_root}/ok").json()
    assert listed == {"files": [{"path": "fine.txt", "is_dir": False, "file_size": 4}]}


def test_names_that_collide_after_url_decoding_name_one_artifact(target: Target) -> None:
    """An encoded slash or dot is decoded once, so `docs%2Fnote.txt` is `docs/note.txt`
    (one entry, replaced), never a second name beside it; encoded twice it is refused."""
    root = f"{ARTIFACTS}/{target.run_root}"
    assert raw(target, "PUT", f"{root}/docs/note.txt", b"first").status == 200
    assert raw(target, "PUT", f"{root}/docs%2Fnote.txt", b"second").status == 200
    assert raw(target, "PUT", f"{root}/docs/%2e/note.txt", b"third").status == 200
    refused(raw(target, "PUT", f"{root}/docs%252Fnote.txt", PWNED), 400)
    listed = raw(target, "GET", f"{ARTIFACTS}?path={target.run_root}/docs").json()
    assert listed == {"files": [{"path": "note.txt", "is_dir": False, "file_size": 5}]}
    assert raw(target, "GET", f"{root}/docs/note.txt").body == b"third"
    assert holding(target.root.parent, PWNED) == []


# -- symlinks planted in the store ---------------------------------------------------------

def object_path(target: Target, digest: str) -> Path:
    return target.root / "server-artifacts" / "objects" / digest[:2] / digest[2:]


def test_an_upload_over_a_planted_symlink_writes_inside_the_store(target: Target) -> None:
    """A symlink planted where an upload's object will go is replaced, not written through."""
    from cairn.objects.hashing import hash_bytes

    payload = b"an upload through a planted symlink"
    planted = object_path(target, hash_bytes(payload))
    planted.parent.mkdir(parents=True, exist_ok=True)
    aim = target.root / "outside" / "written-through-the-link.txt"
    planted.symlink_to(aim)
    url = f"{ARTIFACTS}/{target.run_root}/linked/payload.bin"
    assert raw(target, "PUT", url, payload).status == 200
    assert not aim.exists() and not planted.is_symlink()
    assert planted.read_bytes() == payload
    assert raw(target, "GET", url).body == payload


def test_a_download_does_not_follow_a_symlink_planted_in_the_store(target: Target) -> None:
    """An object replaced by a symlink to a file outside is not served."""
    from cairn.objects.hashing import hash_bytes

    decoy = b"x" * len(SECRET)  # the secret's size, so a leak would be served whole
    url = f"{ARTIFACTS}/{target.run_root}/planted/decoy.txt"
    assert raw(target, "PUT", url, decoy).status == 200
    stored = object_path(target, hash_bytes(decoy))
    stored.unlink()
    stored.symlink_to(target.root / "outside" / "secret.txt")
    try:
        answer = raw(target, "GET", url)
    except (http.client.HTTPException, OSError):
        return  # the connection cut before any byte: nothing served
    assert SECRET not in answer.body
    refused(answer)


# -- model versions ------------------------------------------------------------------------

def registered(target: Target, name: str, files: dict[str, bytes]) -> dict[str, Any]:
    """A version registered from `files` uploaded under the run's `name/`."""
    for rel, data in files.items():
        url = f"{ARTIFACTS}/{target.run_root}/{name}/{rel}"
        assert raw(target, "PUT", url, data).status == 200
    api = f"{target.server.url}{API}"
    httpx.post(f"{api}/registered-models/create", json={"name": name})
    created = httpx.post(f"{api}/model-versions/create",
                         json={"name": name, "source": f"runs:/{target.run}/{name}",
                               "run_id": target.run})
    assert created.status_code == 200, created.text
    version: dict[str, Any] = created.json()["model_version"]
    return version


def sources(target: Target) -> dict[str, str]:
    secret_dir = str(target.root / "outside")
    return {
        "a local path": secret_dir,
        "a relative path": "../outside",
        "a file URL": f"file://{secret_dir}",
        "a file URL with a host": f"file://localhost{secret_dir}",
        "the store itself": str(target.root / "server-artifacts"),
        "a runs URI climbing out": f"runs:/{target.run}/../../../../outside",
        "a runs URI, absolute": f"runs:/{target.run}//{secret_dir.lstrip('/')}",
        "an artifacts URI climbing out": "mlflow-artifacts:/../../outside",
        "an artifacts URI, encoded": "mlflow-artifacts:/%2e%2e/%2e%2e/outside",
        "a tree by digest": f"mlflow-artifacts:/objects/{'0' * 64}",
        "an s3 URL": "s3://somebody-else/model",
        "an http URL": "http://169.254.169.254/latest/meta-data/",
    }


SOURCE_NAMES = ["a local path", "a relative path", "a file URL", "a file URL with a host",
                "the store itself", "a runs URI climbing out", "a runs URI, absolute",
                "an artifacts URI climbing out", "an artifacts URI, encoded",
                "a tree by digest", "an s3 URL", "an http URL"]


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize("kind", SOURCE_NAMES)
def test_a_version_source_outside_the_artifact_store_is_refused(target: Target,
                                                                 kind: str) -> None:
    api = f"{target.server.url}{API}"
    httpx.post(f"{api}/registered-models/create", json={"name": "sourced"})
    answer = httpx.post(f"{api}/model-versions/create",
                        json={"name": "sourced", "source": sources(target)[kind]})
    refused(Answer(answer.status_code, answer.content), 400, 404)
    listed = httpx.get(f"{api}/model-versions/search", params={"filter": "name='sourced'"})
    assert listed.json().get("model_versions", []) == []


def test_overwriting_a_registered_versions_files_leaves_the_version_as_registered(
        target: Target) -> None:
    from cairn.objects.hashing import hash_bytes

    version = registered(target, "frozen", {"MLmodel": b"flavors: {}\n",
                                            "weights.bin": b"original weights"})
    api = f"{target.server.url}{API}"
    uri = httpx.get(f"{api}/model-versions/get-download-uri",
                    params={"name": "frozen", "version": version["version"]}).json()
    tree = uri["artifact_uri"].removeprefix("mlflow-artifacts:/")
    # the run's copy may change (it is the run's), the registered tree may not
    url = f"{ARTIFACTS}/{target.run_root}/frozen/weights.bin"
    assert raw(target, "PUT", url, b"tampered weights").status == 200
    refused(raw(target, "PUT", f"{ARTIFACTS}/{tree}/weights.bin", b"tampered weights"), 400)
    refused(raw(target, "DELETE", f"{ARTIFACTS}/{tree}/weights.bin"), 400, 404, 405)
    assert raw(target, "GET", f"{ARTIFACTS}/{tree}/weights.bin").body == b"original weights"
    again = httpx.get(f"{api}/model-versions/get-download-uri",
                      params={"name": "frozen", "version": version["version"]}).json()
    assert again == uri
    original = hash_bytes(b"original weights")
    assert object_path(target, original).read_bytes() == b"original weights"


def test_model_names_that_collide_after_url_decoding_stay_apart(target: Target) -> None:
    api = f"{target.server.url}{API}"
    for name in ("churn model", "churn%20model", "churn%2520model"):
        assert httpx.post(f"{api}/registered-models/create",
                          json={"name": name}).status_code == 200, name
    for name in ("churn model", "churn%20model", "churn%2520model"):
        found = httpx.get(f"{api}/registered-models/get", params={"name": name}).json()
        assert found["registered_model"]["name"] == name
    twice = httpx.post(f"{api}/registered-models/create", json={"name": "churn%20model"})
    assert refused(Answer(twice.status_code, twice.content), 400)["error_code"] == \
        "RESOURCE_ALREADY_EXISTS"


# -- cross-site requests, size, JSON, Host -------------------------------------------------

FORM_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
              "text/plain", "Text/Plain; charset=UTF-8", None]
MUTATIONS = [("POST", f"{API}/experiments/create", {"name": "csrf"}),
             ("POST", f"{API}/registered-models/create", {"name": "csrf"}),
             ("POST", f"{API}/runs/delete", {"run_id": "RUN"}),
             ("PATCH", f"{API}/registered-models/update", {"name": "csrf"}),
             ("DELETE", f"{API}/registered-models/delete", {"name": "csrf"}),
             ("POST", "/api/2.0/mlflow-artifacts/mpu/create/x/y", {"path": "x"}),
             ("POST", "/api/v1/anything", {"name": "csrf"})]


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize("content_type", FORM_TYPES)
@pytest.mark.parametrize(("method", "path", "fields"), MUTATIONS,
                         ids=[f"{m} {p.rsplit('/', 2)[-2]}" for m, p, _ in MUTATIONS])
def test_a_cross_site_form_request_is_refused(target: Target, content_type: str | None,
                                              method: str, path: str,
                                              fields: dict[str, str]) -> None:
    """A body a page on another site can send without a CORS preflight: refused before
    any route reads it (a JSON text in it would otherwise be read as JSON)."""
    body = json.dumps({k: v.replace("RUN", target.run) for k, v in fields.items()}).encode()
    headers = {} if content_type is None else {"Content-Type": content_type}
    found = refused(raw(target, method, path, body, headers), 415)
    assert "application/json" in found["message"]
    api = f"{target.server.url}{API}"
    assert httpx.get(f"{api}/experiments/get-by-name",
                     params={"experiment_name": "csrf"}).status_code == 404
    assert httpx.get(f"{api}/registered-models/get", params={"name": "csrf"}).status_code == 404
    assert httpx.get(f"{api}/runs/get", params={"run_id": target.run}).json()["run"]["info"][
        "lifecycle_stage"] == "active"


def test_the_same_requests_as_json_and_artifact_puts_of_any_type_are_served(
        target: Target) -> None:
    """What the mlflow client sends passes: JSON, and artifact PUTs typed by file name
    (text/plain for MLmodel and .txt, as http_artifact_repo.py guesses them)."""
    api = f"{target.server.url}{API}"
    assert httpx.post(f"{api}/experiments/create", json={"name": "json"}).status_code == 200
    for content_type in ("text/plain", "application/octet-stream", "multipart/form-data",
                         "application/x-www-form-urlencoded", "image/png"):
        url = f"{ARTIFACTS}/{target.run_root}/typed/{content_type.replace('/', '-')}"
        assert raw(target, "PUT", url, b"bytes", {"Content-Type": content_type}).status == 200
    assert raw(target, "POST", f"{API}/runs/update", b"",
               {"Content-Type": "application/json"}).status == 400  # the route's own answer


def test_an_oversized_body_is_refused_before_it_is_read(target: Target) -> None:
    """Refused on its declared length, and a chunked body as soon as it passes the limit
    (the rest is never sent, so a server waiting for it would not answer)."""
    declared = raw(target, "POST", f"{API}/runs/log-batch", b"{}",
                   {"Content-Length": str(LIMIT + 1), "Content-Type": "application/json"})
    assert refused(declared, 413)["error_code"] == "RESOURCE_LIMIT_EXCEEDED"

    with socket.create_connection((HOST, target.port), timeout=30) as sock:
        sock.sendall(f"POST {API}/runs/log-batch HTTP/1.1\r\nHost: {HOST}:{target.port}\r\n"
                     "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     .encode())
        chunk = b"[" + b" " * ((1 << 20) - 1)
        try:
            for _ in range(LIMIT // len(chunk) + 2):  # past the limit; no last chunk
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the server answered and closed while we were still sending
        response = http.client.HTTPResponse(sock)
        response.begin()
        streamed = Answer(response.status, response.read())
    assert refused(streamed, 413)["error_code"] == "RESOURCE_LIMIT_EXCEEDED"
    assert httpx.get(f"{target.server.url}/health").status_code == 200


def test_an_artifact_upload_larger_than_the_json_limit_is_served(target: Target) -> None:
    blob = os.urandom(1 << 20) * 17
    url = f"{target.server.url}{ARTIFACTS}/{target.run_root}/big/blob.bin"
    assert httpx.put(url, content=blob, timeout=60).status_code == 200
    assert httpx.get(url, timeout=60).content == blob


MALFORMED = {"truncated": b'{"name": "x"', "not JSON": b"name=x", "a list": b'["x"]',
             "a string": b'"x"', "invalid UTF-8": b'{"name": "\xff\xfe"}',
             "deeply nested": b"[" * 100_000, "a lone surrogate": b'{"name": "\\ud800"}',
             "surrogate bytes": b'{"name": "\xed\xa0\x80"}',
             "a huge number": b'{"experiment_ids": ["0"], "max_results": 1e999}',
             "an id past 64 bits": b'{"experiment_id": "99999999999999999999999"}',
             "a step past 64 bits": b'{"run_id": "RUN", "key": "k", "value": 1, '
                                    b'"timestamp": 1, "step": 99999999999999999999999}'}
MALFORMED_ROUTES = {"truncated": "experiments/create", "not JSON": "experiments/create",
                    "a list": "experiments/create", "a string": "experiments/create",
                    "invalid UTF-8": "experiments/create", "deeply nested": "runs/log-batch",
                    "a lone surrogate": "experiments/create",
                    "surrogate bytes": "registered-models/create",
                    "a huge number": "runs/search", "an id past 64 bits": "experiments/delete",
                    "a step past 64 bits": "runs/log-metric"}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_json_is_a_400_never_a_500(target: Target, kind: str) -> None:
    body = MALFORMED[kind].replace(b"RUN", target.run.encode())
    answer = raw(target, "POST", f"{API}/{MALFORMED_ROUTES[kind]}", body,
                 {"Content-Type": "application/json"})
    assert refused(answer, 400)["error_code"] == "INVALID_PARAMETER_VALUE"


FOREIGN_HOSTS = ["evil.example", "evil.example:5000", "127.0.0.1.evil.example",
                 "localhost.evil.example", "", "[::1", "127.0.0.1:80:80", "127.0.0.1 x"]


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize("host", FOREIGN_HOSTS)
def test_a_host_header_that_is_not_the_servers_is_refused(target: Target, host: str) -> None:
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 talks
    to the server with its own name in the Host header."""
    for method, path, body in (("GET", f"{API}/experiments/search", b""),
                               ("POST", f"{API}/experiments/create", b'{"name": "rebound"}'),
                               ("GET", f"{ARTIFACTS}/{target.run_root}/ok/fine.txt", b"")):
        answer = raw(target, method, path, body, {"Host": host,
                                                  "Content-Type": "application/json"})
        assert refused(answer, 400)["error_code"] == "BAD_REQUEST"
    assert httpx.get(f"{target.server.url}{API}/experiments/get-by-name",
                     params={"experiment_name": "rebound"}).status_code == 404


def test_a_request_without_a_host_header_is_refused(target: Target) -> None:
    answer = raw(target, "GET", f"{API}/experiments/get?experiment_id=0",
                 headers={"Host": None}, version="HTTP/1.0")
    assert "without a Host header" in refused(answer, 400)["message"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:{port}", "localhost:{port}",
                                  "LOCALHOST", "[::1]:{port}"])
def test_the_servers_own_names_are_served(target: Target, host: str) -> None:
    answer = raw(target, "GET", f"{API}/experiments/get?experiment_id=0",
                 headers={"Host": host.format(port=target.port)})
    assert answer.status == 200 and answer.json()["experiment"]["name"] == "Default"


def test_health_answers_a_load_balancer_by_any_host(target: Target) -> None:
    assert raw(target, "GET", "/health", headers={"Host": "10.0.0.7"}).json() == \
        {"status": "ok"}


def test_allowed_hosts_lets_a_named_server_be_reached_by_its_names(tmp_path: Path) -> None:
    with running(f"sqlite:///{tmp_path / 'team.db'}", tmp_path, "--allowed-hosts",
                 "models.example.com,*.corp.example") as server:
        live = Target(server, tmp_path, "0", "")
        for host in ("models.example.com", "models.example.com:443", "ml.corp.example:5000",
                     f"127.0.0.1:{live.port}"):
            answer = raw(live, "GET", f"{API}/experiments/get?experiment_id=0",
                         headers={"Host": host})
            assert answer.status == 200, (host, answer.body)
        for host in ("example.com", "corp.example", "models.example.com.evil.example"):
            found = refused(raw(live, "GET", f"{API}/experiments/get?experiment_id=0",
                                headers={"Host": host}), 400)
            assert "--allowed-hosts" in found["message"]


@pytest.mark.parametrize(("allowed", "host", "served"), [
    ((), "10.1.2.3:5000", True), ((), "[fd00::1]:5000", True), ((), "localhost", True),
    ((), "models.example.com", False), ((), "10.1.2.3.nip.io", False),
    (("models.example.com",), "models.example.com:5000", True),
    (("*",), "anything.example", True)])
def test_on_every_interface_addresses_are_served_and_names_only_when_allowed(
        tmp_path: Path, allowed: tuple[str, ...], host: str, served: bool) -> None:
    """Bound to 0.0.0.0 a server is reached by any of its addresses (an address cannot
    be re-pointed by DNS); a name only if --allowed-hosts lists it, or says `*`."""
    import asyncio

    from cairn.commands.server import ServerConfig
    from cairn.server.app import create_app

    config = ServerConfig(f"sqlite:///{tmp_path / 'team.db'}", str(tmp_path / "store"),
                          host="0.0.0.0", allowed_hosts=allowed)
    app = create_app(config)

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            return await client.get(f"{API}/experiments/get", params={"experiment_id": "0"},
                                    headers={"Host": host})

    try:
        answer = asyncio.run(get())
    finally:
        app.state.cairn.close()
    assert answer.status_code == (200 if served else 400), answer.text


def test_allowed_hosts_must_be_host_names(repo: CliRepo) -> None:
    refused = repo.cairn("server", "--allowed-hosts", "models.example.com,http://x/", ok=False)
    assert refused.exit_code == 2 and "--allowed-hosts 'http://x/'" in refused.stderr
