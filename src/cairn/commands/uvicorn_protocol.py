"""The HTTP/1.1 protocol both of Cairn's servers run under uvicorn (loaded by uvicorn only).

httptools (llhttp) reads a raw `#` in a request target as the start of a fragment and drops
the rest, so `PUT /a/model#/../../x` would reach the application as `PUT /a/model`: the
server would act on a path the client did not send. A `#` has no place in a request target
(RFC 9112 §3.2; clients send `%23`), so it is kept in the path, escaped, exactly as the h11
protocol keeps it, and the application's path checks see and refuse it.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class ExactTargetProtocol(HttpToolsProtocol):
    def on_headers_complete(self) -> None:
        if b"#" in self.url:
            self.url = self.url.replace(b"#", b"%23")
        super().on_headers_complete()
