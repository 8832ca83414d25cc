"""`beep fewshot suggest`: candidate few-shot examples from your own dataset, to curate a set for `beep refine --fewshot`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from beep.commands.options import DbOption, print_error
from beep.config import default_paths

fewshot_app = typer.Typer(
    help="The few-shot set the refine classifier learns from: the bundled sample gets its own "
         "(seeds/fewshot_examples.csv), any other workspace a generic default (seeds/fewshot_generic.csv) "
         "unless you curate one with `beep fewshot suggest` and pass it to `beep refine --fewshot`.",
    no_args_is_help=True,
)


@fewshot_app.command("suggest")
def suggest_command(
    out: Annotated[Path, typer.Option(help="CSV to write the candidates to (columns text, verdict, note, example_id, then kind, confidence, channel_name, n_chars for you; refine ignores the extra ones).")] = Path("fewshot_candidates.csv"),
    n: Annotated[int, typer.Option("-n", "--n", min=4, help="How many candidates (20-30 of each verdict make a good set; pick more and delete the doubtful ones).")] = 60,
    seed: Annotated[int, typer.Option(help="Seed of the sampling order (same data + seed + set = same candidates).")] = 7,
    force: Annotated[bool, typer.Option(help="Overwrite --out if it exists.")] = False,
    fewshot: Annotated[Optional[Path], typer.Option(help="The current few-shot CSV: it fills each candidate's verdict column, and its examples are not suggested again (default: the set `beep refine` would choose for this dataset — the sample's for the bundled sample, else the generic one).", show_default=False)] = None,
    db: DbOption = None,
) -> None:
    """Write candidate few-shot examples from this dataset, with the current verdict, for you to correct.

    The candidates are spread over kinds of message (borderline ones the current set is least sure
    of, short acknowledgements, chatter, questions, problem reports, technical, long, other) and over
    channels, in a seeded order. The file is a valid few-shot set as written: correct the verdict
    column (strong = someone should be alerted; weak = chatter nobody needs to be alerted for), delete
    rows you are unsure of, then `beep refine --fewshot FILE`.
    """
    from beep.db import DatabaseBusy, connect
    from beep.refine.fewshot import FewShotError, choose_fewshot
    from beep.refine.store import NoTrainingExamples, require_training_examples
    from beep.refine.suggest import suggest_candidates, write_candidates

    err = Console(stderr=True)
    if out.exists() and not force:
        print_error(err, f"{out} exists: pass --force to overwrite it or choose another --out.")
        raise typer.Exit(code=1)
    paths = default_paths(db)
    try:
        require_training_examples(paths.duckdb)
        choice = choose_fewshot(paths.duckdb, paths.project_dir, fewshot)
        taken = {e.example_id for e in choice.fewshot.examples if e.example_id}
        with connect(paths.duckdb, read_only=True) as con:
            rows = suggest_candidates(con, choice.fewshot, n=n, seed=seed, exclude_ids=taken)
    except (NoTrainingExamples, DatabaseBusy, FileNotFoundError, FewShotError) as exc:
        print_error(err, exc)
        raise typer.Exit(code=1) from exc
    write_candidates(rows, out)
    err.print(choice.message, markup=False, highlight=False, emoji=False)
    weak = sum(1 for r in rows if r["verdict"] == "weak")
    kinds = sorted({str(r["kind"]) for r in rows})
    Console().print(
        f"wrote {len(rows)} candidates ({len(rows) - weak} strong, {weak} weak by the current set; kinds: "
        f"{', '.join(kinds)}) from {len({r['channel_name'] for r in rows})} channels to {out}. Correct the verdict "
        f"column (strong = someone should be alerted, weak = chatter), delete doubtful rows, then: "
        f"beep refine --fewshot {out}",
        markup=False, highlight=False, emoji=False,
    )
