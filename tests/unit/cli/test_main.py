import importlib

from click.testing import CliRunner

from cairn.cli.main import LAZY_COMMANDS, cli


def test_lazy_command_table_matches_every_module() -> None:
    declared: dict[str, str] = {}
    for module_name in set(LAZY_COMMANDS.values()):
        module = importlib.import_module(f"cairn.cli.{module_name}")
        declared.update({command.name or "": module_name for command in module.COMMANDS})
    assert declared == LAZY_COMMANDS


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in LAZY_COMMANDS:
        command = cli.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None
        assert (f"  {name} " in result.output) != command.hidden


def test_unknown_command_is_one_clear_error() -> None:
    result = CliRunner().invoke(cli, ["reprod"])
    assert result.exit_code == 2
    assert "No such command 'reprod'" in result.output
