"""A local HTTP endpoint for webhook and gate tests: records every POST, answers with a
chosen status, and can hold its answers until the test releases them.

    receiver.url                 http://127.0.0.1:PORT
    receiver.status = 500        the status of every answer from now on
    receiver.statuses = [500]    the statuses of the next answers, before `status`
    receiver.hold()              answers wait until release() (or HOLD_LIMIT_S)
    receiver.wait_for(n)         the first n requests, waiting for them (bounded)

Test modules make their fixture from `running()`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"
WAIT_S = 30.0  # for requests to arrive (a background worker starts a Python first)
HOLD_LIMIT_S = 15.0  # a held answer is sent at the latest after this


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> str:
        return self.headers.get("X-Cairn-Event", "")

    def json(self) -> Any:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("X-Cairn-Signature", ""), expected)


class Receiver:
    def __init__(self) -> None:
        self.status = 200
        self.statuses: list[int] = []
        self.answer = b"ok\n"
        self.delay_s = 0.0
        self.requests: list[Received] = []
        self.answered = 0
        self._arrived = threading.Condition()
        self._released = threading.Event()
        self._released.set()
        self._server = ThreadingHTTPServer((HOST, 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def wait_for(self, count: int, timeout: float = WAIT_S) -> list[Received]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def _record(self, request: Received) -> None:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver._record(Received(self.path, dict(self.headers.items()), body))
            receiver._released.wait(HOLD_LIMIT_S)
            if receiver.delay_s:
                threading.Event().wait(receiver.delay_s)
            status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(receiver.answer)))
                self.end_headers()
                self.wfile.write(receiver.answer)
            except OSError:  # the client gave up waiting (a timeout under test)
                pass
            receiver.answered += 1

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def running() -> Iterator[Receiver]:
    """A receiver for a fixture to yield: stopped when the block ends."""
    r = Receiver()
    try:
        yield r
    finally:
        r.stop()


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])
