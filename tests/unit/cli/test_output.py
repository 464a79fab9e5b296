"""cli.output: sizes for people, and a progress bar that learns its total late."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.progress import Progress

from cairn.cli import output


def test_human_size() -> None:
    assert output.human_size(0) == "0 B"
    assert output.human_size(1023) == "1023 B"
    assert output.human_size(1536) == "1.5 KiB"
    assert output.human_size(5 * 1024**3) == "5.0 GiB"
    assert output.human_size(3 * 1024**5) == "3.0 PiB"
    assert output.human_size(2048 * 1024**5) == "2048.0 PiB"  # the largest unit


def test_progress_is_silent_off_a_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    with output.progress("Pushing") as bar:  # pytest's stderr is not a terminal
        bar(3)
        bar.add_total(10)
    assert capfd.readouterr() == ("", "")  # a Rich bar would leave at least a newline


def test_a_bar_learns_its_total_as_work_becomes_known() -> None:
    with Progress(console=Console(file=io.StringIO())) as rich_bar:
        task = rich_bar.add_task("Fetching", total=None)
        bar = output.ProgressBar(rich_bar, task)
        bar.add_total(3)
        bar(2)
        bar.add_total(4)  # the next level of a directory
        bar(1)
        state = rich_bar.tasks[0]
        assert (state.total, state.completed) == (7, 3)


def test_every_json_flag_is_the_same_one() -> None:
    """`--json` means the same on every command: one flag, one help text, one parameter."""
    import click

    from cairn.cli.main import cli

    def commands(group: click.Group, ctx: click.Context) -> list[click.Command]:
        found: list[click.Command] = []
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            found += commands(command, ctx) if isinstance(command, click.Group) else [command]
        return found

    with click.Context(cli) as ctx:
        flags = [(o.name, o.help) for c in commands(cli, ctx) for o in c.params
                 if isinstance(o, click.Option) and "--json" in o.opts]
    assert len(flags) > 10
    assert set(flags) == {("as_json", "Machine-readable output.")}
