"""A Cairn server in a thread of the test process (uvicorn on 127.0.0.1, a free port),
for the store conformance suite run through `RestStore`: the real app and the real HTTP
stack, without a subprocess per test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.server_process import HOST, free_port

START_TIMEOUT_S = 20.0


@contextmanager
def serving(backend_store_uri: str, artifacts: Path) -> Iterator[str]:
    """The URL of a server on `backend_store_uri`, until the block ends."""
    import uvicorn

    from cairn.commands.server import ServerConfig
    from cairn.server.app import create_app

    app = create_app(ServerConfig(backend_store_uri, str(artifacts)))
    port = free_port()
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="on",
                            access_log=False, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"cairn-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the in-process server on port {port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
