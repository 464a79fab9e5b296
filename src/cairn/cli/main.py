"""Entry point: global options, command registration, and errors mapped to one line."""

from __future__ import annotations

import sys

import click

from cairn import __version__
from cairn.errors import CairnError, Interrupted, from_os_error

INTERNAL_ERROR_EXIT = 70  # EX_SOFTWARE

# command name -> the module defining it, imported only when that command is used, so
# `cairn metrics diff` never pays for importing the registry's commands (and vice versa).
# tests/unit/cli/test_main.py checks this table against each module's COMMANDS.
LAZY_COMMANDS = {
    "add": "data", "checkout": "data", "commit": "data", "git-hook": "data", "init": "data",
    "get": "data", "install-hooks": "data", "status": "data", "unprotect": "data",
    "config": "config_cmd",
    "fetch": "transfer", "pull": "transfer", "push": "transfer", "remote": "transfer",
    "du": "maintenance", "fsck": "maintenance", "gc": "maintenance",
    "retention": "maintenance",
    "dag": "pipeline", "stage": "pipeline",
    "repro": "repro",
    "metrics": "metrics", "params": "metrics", "plots": "metrics",
    "db": "tracking", "experiments": "tracking", "runs": "tracking",
    "models": "models",
    "package": "package",
    "server": "server",
    "serve": "serve",
    "reproduce": "reproduce",
    "tier": "tier",
}


class CairnGroup(click.Group):
    """Turns a CairnError into one line on stderr and its class's exit code, and imports
    a command's module only when that command is used (LAZY_COMMANDS)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(LAZY_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = LAZY_COMMANDS.get(cmd_name)
        if module_name is None:
            return None
        import importlib

        module = importlib.import_module(f"cairn.cli.{module_name}")
        return next((c for c in module.COMMANDS if c.name == cmd_name), None)

    def invoke(self, ctx: click.Context) -> object:
        try:
            try:
                return super().invoke(ctx)
            except OSError as e:  # the machine's: disk full, EFBIG, EACCES, EROFS, …
                machine = from_os_error(e)
                if machine is None:
                    raise
                raise machine from e
        except CairnError as e:
            if ctx.meta.get("cairn.verbose"):
                _print_traceback()
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Interrupted as e:  # SIGTERM, SIGHUP or SIGINT handled as Ctrl-C is
            click.echo(f"{e}; the previous state is intact", err=True)
            sys.exit(e.exit_code)
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


def main() -> None:
    cli(prog_name="cairn")
