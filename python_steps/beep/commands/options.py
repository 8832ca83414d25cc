"""Options several commands share, and the conventions every command follows.

- a choice is a ``Literal`` (shown and checked as ``local|openai|azure``), never a free string;
- a bad option value exits 2 (click's usage-error code), whoever finds it;
- the same concept has one name, type and default everywhere (``--max-tries``, ``--poll-interval``,
  ``--rpm`` as a float, ``--timeout`` 60 s, ``--concurrency`` 8), and an option several commands take is
  declared once, here (``--db``, ``--base-url``, ``--azure-endpoint``, ``--api-version``);
- ``--provider`` choices come from the provider registry (:mod:`beep.providers`): each command offers
  the providers that can do its job;
- consoles made by :func:`make_console` never wrap or cut at 80 columns when not on a terminal.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn, Optional

import typer

from beep import providers

if TYPE_CHECKING:
    from rich.console import Console

DbOption = Annotated[
    Optional[Path],
    typer.Option(
        "--db",
        envvar="BEEP_DUCKDB_PATH",
        help="The DuckDB file that holds all of Beep's state (default: beep.duckdb at the repo root).",
        show_default=False,
    ),
]

#: The ``--provider`` choices, read from the provider registry (beep.providers): every provider, and
#: those that can refine, fine-tune, or predict with a model (evaluate, predict).
AnyProvider = Literal[providers.names()]  # type: ignore[valid-type]
RefineProvider = Literal[providers.names("refine")]  # type: ignore[valid-type]
FinetuneProvider = Literal[providers.names("finetune")]  # type: ignore[valid-type]
PredictProvider = Literal[providers.names("predict")]  # type: ignore[valid-type]
#: `beep predict`'s override of a job's provider (the name it imports).
Provider = PredictProvider

BaseUrlOption = Annotated[
    Optional[str],
    typer.Option("--base-url", envvar="OPENAI_BASE_URL", show_default=False,
                 help="OpenAI-compatible server URL (env OPENAI_BASE_URL; default api.openai.com). The key comes from "
                      "OPENAI_API_KEY only."),
]
AzureEndpointOption = Annotated[
    Optional[str],
    typer.Option("--azure-endpoint", envvar="AZURE_OPENAI_ENDPOINT", show_default=False,
                 help="Azure OpenAI endpoint, for the provider azure (--provider azure, or a job made with it); key from "
                      "AZURE_OPENAI_API_KEY."),
]
ApiVersionOption = Annotated[
    Optional[str],
    typer.Option("--api-version", envvar="OPENAI_API_VERSION", show_default=False,
                 help="Azure OpenAI API version, for the provider azure (--provider azure, or a job made with it)."),
]
#: Evaluate and predict: use another provider than the job's (e.g. azure for a model named like OpenAI's).
ProviderOverrideOption = Annotated[
    Optional[PredictProvider],
    typer.Option("--provider", show_default=False,
                 help="Override the job's provider (default: the job's). Providers that predict: "
                      + ", ".join(providers.names("predict")) + "."),
]
#: The JSONL format of an export.
ExportFormat = Literal["chat", "completion"]

#: The exit code of a bad option value (click's own for usage errors), for checks made after parsing too.
BAD_OPTION_EXIT = 2

#: Defaults shared by every command that talks to an OpenAI-compatible server.
DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_TRIES = 8
DEFAULT_POLL_INTERVAL_SECONDS = 15.0

#: The options of every command that talks to an OpenAI-compatible server (same name, type, default, help).
ConcurrencyOption = Annotated[int, typer.Option("--concurrency", min=1, help="OpenAI-compatible providers: requests in flight at once.")]
RpmOption = Annotated[
    Optional[float],
    typer.Option("--rpm", min=0.001, show_default=False,
                 help="OpenAI-compatible providers: requests per minute to stay under (the server's x-ratelimit headers "
                      "can lower it)."),
]
TpmOption = Annotated[
    Optional[float],
    typer.Option("--tpm", min=1.0, show_default=False,
                 help="OpenAI-compatible providers: tokens per minute to stay under (prompt + max output tokens per "
                      "request, as OpenAI counts)."),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="OpenAI-compatible providers: seconds before a request times out (then it is retried).")
]
MaxTriesOption = Annotated[
    int, typer.Option("--max-tries", min=1, help="OpenAI-compatible providers: attempts per request on 429 / 5xx / "
                                                 "timeouts / dropped connections.")
]
#: Commands that follow a remote job (a fine-tuning job, refine's batches).
PollIntervalOption = Annotated[
    float, typer.Option("--poll-interval", min=0.01, help="Seconds between polls of a remote job (a fine-tuning job; "
                                                         "refine's --batch-api batches).")
]

#: Width of a console that is not a terminal (a pipe, a file, CI): wide enough that no table cell is
#: cut and no command in a message is broken over two lines. ``COLUMNS`` still wins when set.
PIPE_WIDTH = 10_000


def make_console(*, stderr: bool = False) -> "Console":
    """A rich console that wraps at the terminal's width on a terminal and never at 80 columns in a pipe."""
    from rich.console import Console

    console = Console(stderr=stderr)
    if console.is_terminal or os.environ.get("COLUMNS"):
        return console
    return Console(stderr=stderr, width=PIPE_WIDTH)


def print_error(console: "Console", message: object, hint: str = "") -> None:
    """``error: <message>`` in red, the message printed as it is: dbt output, file names and prompts
    hold text such as ``[email]`` or ``:+1:`` that rich would otherwise read as markup or emoji."""
    from rich.markup import escape

    text = str(message) + (f"\n{hint}" if hint else "")
    console.print(f"[red]error:[/red] {escape(text)}", emoji=False, highlight=False)


def bad_option(console: "Console", message: object, hint: str = "") -> NoReturn:
    """A bad option value found after parsing: the message, then exit 2 like click's own checks."""
    print_error(console, message, hint)
    raise typer.Exit(BAD_OPTION_EXIT)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "t": 1000**4, "tb": 1000**4, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}


def parse_size(value: str | int) -> int:
    """Bytes from ``20GB`` (10^9), ``20GiB`` (2^30), ``512MB``, ``1.5TB`` or a plain number of bytes."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    unit = (match.group(2) or "").lower() if match else None
    if match is None or unit not in _UNITS:
        raise typer.BadParameter(f"{value!r} is not a size: give bytes or a number with a unit, e.g. 20GB, 20GiB, 512MB")
    return int(float(match.group(1)) * _UNITS[unit])


def format_size(n: int) -> str:
    """``20GiB`` for 20 * 2^30, ``20GB`` for 20 * 10^9, else the bytes."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2)):
        if n >= factor and n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)
