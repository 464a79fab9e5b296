"""The demo's serving step (examples/demo.py calls `serve_step`): `cairn serve` on a free
local port answers a prediction over HTTP equal to `load_model(...).predict`, then stops.
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CAIRN = [sys.executable, "-m", "cairn"]

# Three test rows as a DataFrame, and what load_model predicts for them (printed as JSON).
EXPECTED = """
import json, sys, cairn, pandas as pd
data = pd.read_csv("data/processed/test.csv").drop(columns="target").head(3)
print(json.dumps({"split": data.to_dict(orient="split"),
                  "predictions": cairn.load_model(sys.argv[1]).predict(data).tolist()}))
"""


def serve_step(project: Path, source: str, key: Path | None = None) -> None:
    """Serve `source` (a package file, or a models:/ URI) from `project`; with `key`,
    only if the package is signed by it. Exits the demo if the answers differ."""
    print("\n# `cairn serve` verifies the package, then answers MLflow's scoring protocol;")
    print("# an `mlflow models serve` client works unchanged against it")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = [*CAIRN, "serve", source, "--port", str(port),
               *(["--key", str(key)] if key is not None else [])]
    print(f"\n$ cairn {shlex.join(command[3:])} &")
    log = project / f"serve-{port}.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(command, cwd=project, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(url, server, log)
        # load_model names a package file `package:PATH`; cairn serve takes either
        uri = f"package:{source}" if source.endswith(".cairnpkg") else source
        loaded = subprocess.run([sys.executable, "-c", EXPECTED, uri], cwd=project,
                                capture_output=True, text=True)
        if loaded.returncode != 0:
            sys.exit(f"demo failed: load_model({uri!r}):\n{loaded.stderr}")
        expected = json.loads(loaded.stdout)
        split = {k: v for k, v in expected["split"].items() if k != "index"}
        body = json.dumps({"dataframe_split": split}).encode()
        print(f"\n$ curl -s {url}/invocations -H 'Content-Type: application/json' "
              f"-d '{body.decode()}'")
        request = urllib.request.Request(f"{url}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        print(f"  {json.dumps(answer)}")
        with urllib.request.urlopen(f"{url}/metadata", timeout=30) as response:
            meta = json.loads(response.read())
        print(f"  (GET /metadata: {meta['kind']} {meta['digest']}, "
              f"{meta['model'].get('name')} v{meta['model'].get('version')})")
        if answer != {"predictions": expected["predictions"]}:
            sys.exit(f"demo failed: the server answered {answer}, load_model predicts "
                     f"{expected['predictions']}")
        print(f"\n# the same as load_model({uri!r}).predict: {expected['predictions']}")
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1).close()
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"demo failed: cairn serve did not start:\n{log.read_text()}")
            time.sleep(0.1)
