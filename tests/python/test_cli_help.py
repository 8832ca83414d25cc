"""Every command and every option of the CLI explains itself in --help."""

from __future__ import annotations

from typing import Any

import typer.main
from typer.testing import CliRunner

from beep.cli import app

EXPECTED_COMMANDS = {"run", "ingest", "build", "sample", "refine", "fewshot", "export", "finetune", "evaluate", "report", "predict"}


def _commands(group: Any, prefix: str = "") -> dict[str, Any]:
    """Every command below a group (typer vendors click, so duck-type: a group has .commands)."""
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        found[prefix + name] = command
        if hasattr(command, "commands"):
            found.update(_commands(command, prefix + name + " "))
    return found


def test_every_command_and_option_has_help() -> None:
    root = typer.main.get_command(app)
    assert hasattr(root, "commands")
    commands = _commands(root)
    assert EXPECTED_COMMANDS <= set(commands)
    missing = []
    for name, command in commands.items():
        if not (command.help or command.short_help):
            missing.append(f"{name}: no description")
        for param in command.params:
            if getattr(param, "hidden", False) or param.name == "help":
                continue
            if not (getattr(param, "help", "") or "").strip():
                missing.append(f"{name} {param.opts[0]}: no help")
    assert not missing, "\n".join(missing)


def test_help_runs_for_every_command() -> None:
    runner = CliRunner()
    root = typer.main.get_command(app)
    for name in _commands(root):
        result = runner.invoke(app, [*name.split(), "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage" in result.output


def test_errors_are_printed_verbatim_not_as_rich_markup() -> None:
    from rich.console import Console

    from beep.commands.options import print_error

    console = Console(record=True, width=200, color_system=None)
    print_error(console, "Got 'call [phone] or [email]' :+1: [/red] in [bold]x", "run it again")
    assert console.export_text() == "error: Got 'call [phone] or [email]' :+1: [/red] in [bold]x\nrun it again\n"
