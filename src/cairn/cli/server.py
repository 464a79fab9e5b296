"""`cairn server`: the team server (REST API and the MLflow-compatible routes)."""

from __future__ import annotations

import click

from cairn.cli import output


@click.command("server")
@click.option("--backend-store-uri", help="The database: sqlite:///… or postgresql://… "
              "(default: the current tracking URI).")
@click.option("--artifacts-destination", help="Where artifacts and models are stored: a "
              "directory or s3://bucket/prefix (default: the objects of that database).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes (they share nothing but the database).")
@click.option("--allow-unauthenticated", is_flag=True,
              help="Serve on a non-local address without auth (behind an authenticating "
                   "proxy only).")
@click.option("--allowed-hosts", multiple=True, metavar="HOSTS",
              help="Host names clients may reach the server by, besides the address it "
                   "listens on (and localhost on a loopback address): comma-separated, "
                   "patterns like *.example.com allowed, * for any. Other Host headers "
                   "are refused (DNS rebinding).")
def server(backend_store_uri: str | None, artifacts_destination: str | None, host: str,
           port: int, workers: int, allow_unauthenticated: bool,
           allowed_hosts: tuple[str, ...]) -> None:
    """Serve runs, models and artifacts over HTTP: Cairn's REST API at /api/v1/ (OpenAPI
    document at /api/v1/openapi.json) and the routes the mlflow client calls."""
    from cairn.commands import server as commands

    served = commands.prepare(backend_store_uri=backend_store_uri,
                              artifacts_destination=artifacts_destination, host=host,
                              port=port, allow_unauthenticated=allow_unauthenticated,
                              allowed_hosts=tuple(h for given in allowed_hosts
                                                  for h in given.split(",")))

    def started() -> None:
        output.echo(f"Cairn server at {served.url} (database {served.backend_store_uri}, "
                    f"artifacts {served.artifacts_destination}); Ctrl-C stops it.")

    commands.serve(served, host=host, port=port, workers=workers, started=started)


COMMANDS: list[click.Command] = [server]
