"""`cairn serve PACKAGE|MODEL_URI`: a model behind MLflow's scoring protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cairn.cli import output
from cairn.commands.serving import DEFAULT_PORT, MAX_BODY

if TYPE_CHECKING:
    from cairn.commands.serving import ServedModel


@click.command("serve")
@click.argument("model", metavar="PACKAGE|MODEL_URI")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes, each with its own copy of the model.")
@click.option("--key", "public_key", metavar="PUB", help="Refuse to start unless the "
              "package is signed by this public key (`cairn package keygen`).")
@click.option("--trust", is_flag=True, help="Allow loading that can run code (unpickling): "
              "only for a model from a source you trust.")
@click.option("--batch-size", type=click.IntRange(1, 1 << 20), default=None,
              help="Rows per predict call at most (default: the package's serving.yaml, "
                   "else 64).")
@click.option("--batch-wait-ms", type=click.FloatRange(0, 1000), default=0.0,
              show_default=True, help="How long a batch waits for more requests once it "
              "has one (it always takes those already waiting).")
@click.option("--max-body", type=click.IntRange(1), default=MAX_BODY, show_default=True,
              help="Bytes of one request body at most (413 beyond).")
@click.option("--allow-unauthenticated", is_flag=True, help="Serve on a non-local address "
              "(the scoring server has no authentication: behind a proxy that has).")
def serve(model: str, host: str, port: int, workers: int, public_key: str | None,
          trust: bool, batch_size: int | None, batch_wait_ms: float, max_body: int,
          allow_unauthenticated: bool) -> None:
    """Serve a package (verified first) or a model URI over HTTP: POST /invocations
    (MLflow's scoring protocol), /predict, GET /health, /metadata, /version."""
    from cairn.commands import serving as commands

    config = commands.prepare(model, host=host, port=port, trusted=trust,
                              public_key=public_key, batch_size=batch_size,
                              batch_wait_ms=batch_wait_ms, max_body=max_body,
                              allow_unauthenticated=allow_unauthenticated)

    def started(served: ServedModel) -> None:
        what = served.metadata.get("model") or {}
        name = f"{what.get('name')} v{what.get('version')}" if what.get("name") else model
        url_host = f"[{host}]" if ":" in host else host
        output.echo(f"Serving {name} ({served.metadata.get('digest')}) at "
                    f"http://{url_host}:{port}/invocations; Ctrl-C stops it.")

    commands.serve(config, port=port, workers=workers, started=started)


COMMANDS: list[click.Command] = [serve]
