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


def test_no_help_text_is_eaten_as_rich_markup() -> None:
    """Help is rendered as rich markup: a bracketed text that is no style (``[system, user]``) would vanish
    from --help unless escaped (``\\[``). Every such text of every description and option must show."""
    import re

    from rich.errors import StyleSyntaxError
    from rich.style import Style
    from rich.text import Text

    lost = []
    for name, command in _commands(typer.main.get_command(app)).items():
        texts = [command.help or ""] + [getattr(p, "help", "") or "" for p in command.params]
        for text in texts:
            plain = Text.from_markup(text).plain
            for tag in re.findall(r"(?<!\\)\[([^\]]*)\]", text):
                try:
                    styled = tag.startswith("/") or bool(Style.parse(tag))
                except StyleSyntaxError:
                    styled = False
                if not styled and f"[{tag}]" not in plain:
                    lost.append(f"{name}: [{tag}] in {text[:60]!r}")
    assert not lost, "\n".join(lost)


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


# --- conventions (issue 10 item 11) ---------------------------------------------------------------

#: Options whose values are a fixed set: --help shows the set, and a value outside it exits 2.
CHOICES = {
    # run offers every provider of the registry and refuses, saying why, one that cannot do the whole chain (hf)
    "run": {"--provider": {"local", "openai", "azure", "hf"}, "--format": {"chat", "completion"}},
    "refine": {"--provider": {"local", "openai", "azure"}},
    "export": {"--format": {"chat", "completion"}, "--split": {"time", "conversation"}},
    "finetune": {"--provider": {"local", "openai", "azure", "hf"}, "--variant": {"ranker", "text", "text+context"}},
    "evaluate": {"--provider": {"local", "openai", "azure", "hf"}, "--split": {"valid", "train"}},
    "predict": {"--provider": {"local", "openai", "azure", "hf"}},
    "sample generate": {"--profile": {"sample", "large"}},
}


def _option(command: Any, name: str) -> Any:
    return next(p for p in command.params if name in p.opts)


def test_choices_are_shown_as_choices_and_flags_have_no_bool_metavar() -> None:
    root = typer.main.get_command(app)
    commands = _commands(root)
    runner = CliRunner()
    for name, options in CHOICES.items():
        out = runner.invoke(app, [*name.split(), "--help"], terminal_width=200).output
        for option, choices in options.items():
            assert "|".join(sorted(choices)) in "|".join(sorted(_displayed_choices(out, option))), (name, option, out)
    for name in commands:
        out = runner.invoke(app, [*name.split(), "--help"], terminal_width=200).output
        assert "<bool>" not in out, name
        assert "<str>" not in out.split("--provider", 1)[-1][:60], name  # the choices, not a type


def _displayed_choices(help_text: str, option: str) -> set[str]:
    import re

    line = next(line for line in help_text.splitlines() if re.search(rf"^\W*{re.escape(option)}\s", line))
    match = re.search(r"<([a-z+|]+)>", line)
    assert match, line
    return set(match.group(1).split("|"))


def test_bad_choice_values_exit_2_everywhere(tmp_path: Any) -> None:
    runner = CliRunner()
    db = str(tmp_path / "none.duckdb")
    for name, options in CHOICES.items():
        for option in options:
            args = [*name.split(), option, "no-such-value"]
            if name != "sample generate":
                args += ["--db", db]
            result = runner.invoke(app, args)
            assert result.exit_code == 2, (args, result.output)
            assert "no-such-value" in result.output


def test_other_bad_option_values_exit_2(tmp_path: Any) -> None:
    runner = CliRunner()
    db = str(tmp_path / "none.duckdb")
    for args in (
        ["refine", "--rpm", "abc", "--db", db],
        ["evaluate", "--rpm", "-5", "--db", db],
        ["ingest", str(tmp_path), "--max-size", "20XB", "--db", db],
        ["build", "--export", str(tmp_path / "missing"), "--db", db],
        ["run", "--var", "no_such_var=1", "--db", db],
        ["predict", "--at", "2025-01-06T10:00", "--db", db],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)


def test_dash_h_and_version() -> None:
    from importlib.metadata import version

    runner = CliRunner()
    for args in (["-h"], ["run", "-h"], ["sample", "generate", "-h"], ["finetune", "cancel", "-h"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Usage" in result.output, args
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"beep {version('beep')}"


def test_one_name_type_and_default_per_concept() -> None:
    """--max-tries / --poll-interval / --timeout / --concurrency / --rpm mean the same everywhere."""
    from beep.commands.options import DEFAULT_CONCURRENCY, DEFAULT_MAX_TRIES, DEFAULT_POLL_INTERVAL_SECONDS, DEFAULT_TIMEOUT_SECONDS

    commands = _commands(typer.main.get_command(app))
    expected = {"--max-tries": DEFAULT_MAX_TRIES, "--poll-interval": DEFAULT_POLL_INTERVAL_SECONDS,
                "--timeout": DEFAULT_TIMEOUT_SECONDS, "--concurrency": DEFAULT_CONCURRENCY}
    seen: dict[str, list[str]] = {}
    for name, command in commands.items():
        visible = {o for p in command.params if not getattr(p, "hidden", False) for o in p.opts}
        assert not visible & {"--max-retries", "--poll-seconds"}, name  # old spellings: hidden aliases only
        for option, default in expected.items():
            if option in visible:
                assert _option(command, option).default == default, (name, option)
                seen.setdefault(option, []).append(name)
        if "--rpm" in visible:
            assert _option(command, "--rpm").type_descriptor.annotation is float, name
    assert set(seen["--max-tries"]) >= {"refine", "evaluate"}
    assert set(seen["--poll-interval"]) >= {"refine", "run", "finetune"}
    assert set(seen["--timeout"]) >= {"refine", "evaluate", "predict"}


def test_old_spellings_still_work() -> None:
    from unittest import mock

    runner = CliRunner()
    with mock.patch("beep.evaluate.api.evaluate", side_effect=SystemExit(0)) as called:
        runner.invoke(app, ["evaluate", "--max-retries", "2"])
    assert called.call_args.kwargs["options"].max_retries == 2
    with mock.patch("beep.evaluate.api.evaluate", side_effect=SystemExit(0)) as called:
        runner.invoke(app, ["evaluate", "--max-tries", "3"])
    assert called.call_args.kwargs["options"].max_retries == 2
    with mock.patch("beep.refine.api.refine", side_effect=SystemExit(0)) as called:
        runner.invoke(app, ["refine", "--poll-seconds", "7"])
    assert called.call_args.kwargs["poll_seconds"] == 7


def test_sizes_accept_units() -> None:
    import pytest

    from beep.commands.options import format_size, parse_size

    assert parse_size("20GB") == 20 * 10**9 and parse_size("20GiB") == 20 * 2**30 and parse_size("20 gb") == 20 * 10**9
    assert parse_size("512MB") == 512 * 10**6 and parse_size("1.5TB") == 15 * 10**11 and parse_size("12345") == 12345
    assert format_size(20 * 2**30) == "20GiB"
    with pytest.raises(typer.BadParameter):
        parse_size("lots")


def test_piped_output_is_not_wrapped_or_cut_at_80_columns(tmp_path: Any) -> None:
    """Issue 10 item 8: a table or a message printed by a command into a pipe keeps its full width."""
    import os
    import subprocess
    import sys

    code = (
        "from rich.table import Table\n"
        "from beep.commands.options import make_console, print_error\n"
        "t = Table('model', 'a rather long column title', 'another long column title', title='t')\n"
        "t.add_row('baseline:mentioned_then_channel_' + 'x' * 40, '0.123', '0.456')\n"
        "make_console().print(t)\n"
        "print_error(make_console(stderr=True), 'refused: ' + 'word ' * 30 + 'run `beep build --export FOLDER` first')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert "…" not in out.stdout and "baseline:mentioned_then_channel_" + "x" * 40 in out.stdout
    assert max(len(line) for line in out.stdout.splitlines()) > 80
    assert len(out.stderr.strip().splitlines()) == 1 and "`beep build --export FOLDER`" in out.stderr


def test_every_environment_variable_beep_reads_is_documented() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    sources = [*sorted((root / "python_steps" / "beep").rglob("*.py")), root / "profiles.yml", root / "dbt_project.yml"]
    read: set[str] = set()
    for path in sources:
        text = path.read_text(encoding="utf-8")
        read |= set(re.findall(r"""(?:environ\.get|getenv|environ\[|env_var)\(?\s*['"]([A-Z][A-Z0-9_]+)['"]""", text))
        read |= set(re.findall(r"""envvar=['"]([A-Z][A-Z0-9_]+)['"]""", text))
        read |= set(re.findall(r"""env\.setdefault\(\s*['"]([A-Z][A-Z0-9_]+)['"]""", text))
        # the provider registry (beep/providers.py) declares the keys and base URLs each provider reads
        for declared in re.findall(r"""(?:key_env|base_url_env)=\(?([^)\n]*)""", text):
            read |= set(re.findall(r"""['"]([A-Z][A-Z0-9_]+)['"]""", declared))
    assert {"BEEP_DUCKDB_PATH", "BEEP_WORKDIR", "BEEP_DBT_THREADS", "BEEP_DUCKDB_MEMORY_LIMIT", "BEEP_DUCKDB_THREADS",
            "OPENAI_API_KEY", "OPENAI_BASE_URL"} <= read
    documented = (root / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = sorted(name for name in read if f"`{name}`" not in documented)
    assert not missing, f"not in docs/configuration.md: {missing}"
