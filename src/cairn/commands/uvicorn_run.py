"""Running an ASGI application under uvicorn, the same way for `cairn server` and `cairn serve`."""

from __future__ import annotations

PROTOCOL = "cairn.commands.uvicorn_protocol:ExactTargetProtocol"


def run_uvicorn(factory: str, *, host: str, port: int, workers: int,
                access_log: bool = True) -> None:
    """Serve the app `factory` ("module:function") until interrupted, in `workers`
    processes; no Server header, and no trust in proxy headers (Cairn is told its hosts)."""
    import uvicorn

    uvicorn.run(factory, factory=True, host=host, port=port, http=PROTOCOL,
                workers=workers if workers > 1 else None, log_level="info",
                access_log=access_log, server_header=False, proxy_headers=False)
