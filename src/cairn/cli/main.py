"""Entry point: global options, command registration, and errors mapped to one line."""

from __future__ import annotations

import sys

import click

from cairn import __version__
from cairn.errors import CairnError

INTERNAL_ERROR_EXIT = 70  # EX_SOFTWARE


class CairnGroup(click.Group):
    """Turns a CairnError into one line on stderr and its class's exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except CairnError as e:
            if ctx.meta.get("cairn.verbose"):
                _print_traceback()
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted; the previous state is intact", err=True)
            sys.exit(130)
        except Exception as e:  # anything else is a bug in Cairn
            if ctx.meta.get("cairn.verbose"):
                _print_traceback()
            click.echo(f"internal error: {type(e).__name__}: {e} "
                       "(this is a bug in Cairn; rerun with -v for the traceback)", err=True)
            sys.exit(INTERNAL_ERROR_EXIT)


def _print_traceback() -> None:
    import traceback

    traceback.print_exc()


@click.group(cls=CairnGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(version=__version__, prog_name="cairn")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Cairn: version data and models by content, with git."""
    ctx.meta["cairn.verbose"] = verbose


def _register() -> None:
    from cairn.cli import (config_cmd, data, maintenance, metrics, models, pipeline, repro,
                           tracking, transfer)

    for module in (data, config_cmd, transfer, maintenance, pipeline, repro, metrics, tracking,
                   models):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="cairn")
