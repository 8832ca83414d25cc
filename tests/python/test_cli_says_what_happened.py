"""What `beep build` and `beep predict` print says what happened, and only results go to stdout
(no dbt, no model: the printing and the reasons on made-up inputs, well under a second)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
from beep.build import DatasetSummary, _stdout_to_stderr, dbt_result_counts
from beep.commands.build_cmd import SHOWN_LABELS, print_summary
from beep.commands.predict_cmd import _no_alert_line
from beep.live.predict import Candidate
from beep.ranker.features import _NEVER, FEATURES, reason
from rich.console import Console


def _summary(n_labels: int) -> DatasetSummary:
    summary = DatasetSummary(export_path=Path("/x"), n_raw_messages=90_000, n_examples=40_000, n_labels=n_labels)
    summary.labels = [(i, f"user{i}", 10 + i) for i in range(n_labels)]
    summary.fates = [("target", None, 40_000), ("excluded", "bot", 50)]
    summary.table_rows = {"training_examples": 40_000, "user_labels": n_labels}
    summary.seconds = 12.3
    summary.dbt_results = dbt_result_counts(
        [{"unique_id": "model.beep.a", "status": "success"}, {"unique_id": "model.beep.b", "status": "success"},
         {"unique_id": "test.beep.t1", "status": "pass"}, {"unique_id": "test.beep.t2", "status": "fail"},
         {"unique_id": "unit_test.beep.u", "status": "pass"}, {"unique_id": "seed.beep.s", "status": "success"}])
    return summary


def _printed(summary: DatasetSummary, *, verbose: bool) -> str:
    console = Console(record=True, width=120, file=open("/dev/null", "w"))  # noqa: SIM115
    print_summary(summary, console, verbose=verbose)
    return console.export_text()


def test_build_summary_is_short_and_says_models_tests_rows_and_time() -> None:
    text = _printed(_summary(999), verbose=False)
    assert "dbt built 2 models, 3 tests (2 passed, 1 failed), 1 seeds in 12.3 s" in text
    assert "rows: training_examples 40,000, user_labels 999" in text
    assert f"the {SHOWN_LABELS} labels with most examples of 999" in " ".join(text.split())  # a wrapped title
    assert "user998" in text and "user0 " not in text  # the biggest labels, not the first ones
    assert len(text.splitlines()) < 40
    full = _printed(_summary(999), verbose=True)
    assert "user0 " in full and len(full.splitlines()) > 999


def test_dbt_output_goes_to_stderr_while_building(capfd) -> None:
    with _stdout_to_stderr():
        subprocess.run([sys.executable, "-c", "print('dbt says')"], check=True)
    print("result")
    out, err = capfd.readouterr()
    assert out == "result\n" and "dbt says" in err


def test_no_alert_line_says_what_the_number_is() -> None:
    person = Candidate(rank=1, label="3", user_id="U3", user_name="ada", probability=0.04, reason="x")
    filtered = _no_alert_line([], 0.008, 0.05, False)
    assert "nobody is at least 5% likely to answer (--min-probability 0.05)" in filtered
    assert "0.8% to 'nobody needs an alert'" in filtered
    nil_best = _no_alert_line([person], 0.41, None, False)
    assert "'nobody needs an alert' is the model's most likely answer (41.0%" in nil_best
    assert "--exclude-participants" in _no_alert_line([], None, None, True)
    # with both filters, the people left out by --exclude-participants are not said to be unlikely
    both = _no_alert_line([], 0.1, 0.05, True)
    assert "nobody an alert could go to (not in the conversation, not notified by Slack" in both
    assert "5% likely" in both


def _row(**values: float) -> np.ndarray:
    row = np.zeros(len(FEATURES), dtype=np.float32)
    row[FEATURES.index("log_seconds_since_channel")] = _NEVER
    row[FEATURES.index("log_seconds_since_any")] = _NEVER
    row[FEATURES.index("similarity_rank")] = 99
    for name, value in values.items():
        row[FEATURES.index(name)] = value
    return row


def test_reasons_carry_their_numbers_and_name_no_channel_when_none_was_given() -> None:
    assert reason(_row(log_answered_last_author=math.log1p(12)), "help") == "answered the last speaker 12 times"
    assert reason(_row(log_seconds_since_channel=math.log1p(7200), log_messages_channel=3), "help") == "active in #help today (2 h ago)"
    assert reason(_row(share_month=0.07, log_messages_channel=3), "help") == "wrote 7% of #help's messages this month"
    assert reason(_row(from_similar=1, similarity_rank=1, log_messages_channel=2), "help") == "wrote the messages most like this one in #help"
    # text without a channel: nothing about "this channel"
    no_channel = [reason(_row(log_seconds_since_any=math.log1p(600)), None),
                  reason(_row(log_messages_total=math.log1p(41)), None),
                  reason(_row(from_similar=1, similarity_rank=2), None)]
    assert no_channel == ["active in the workspace today (10 min ago)", "wrote 41 messages in the workspace",
                          "wrote about similar things"]
    assert not any("channel" in r for r in no_channel)


def test_slackbot_is_a_bot_not_an_unknown_user(tmp_path: Path) -> None:
    from beep.config import Paths
    from beep.ingest import ingest
    from slack_fixtures import small_team, ts

    team = small_team()  # its users.json has no USLACKBOT, like most real exports
    team.msg("general", "USLACKBOT", "Reminder: standup.", ts(44), subtype="reminder_add")
    team.msg("general", "USLACKBOT", "This message was deleted.", ts(45), subtype="tombstone")
    team.msg("general", "U999", "who am I?", ts(46))
    result = ingest(Paths(duckdb=tmp_path / "b.duckdb", workdir=tmp_path / ".beep"), team.write(tmp_path / "export"),
                    say=lambda line: None)
    unknown = [i for i in result.issues if i.issue == "unknown_user"]
    assert [(i.n, "USLACKBOT" in (i.detail or "")) for i in unknown] == [(1, False)]


def test_a_zip_that_is_not_an_export_is_named_by_the_zip(tmp_path: Path) -> None:
    import zipfile

    import pytest
    from beep.config import Paths
    from beep.ingest import IngestError, ingest

    archive = tmp_path / "holiday-photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("photo.txt", "not an export")
    paths = Paths(duckdb=tmp_path / "b.duckdb", workdir=tmp_path / ".beep")
    with pytest.raises(IngestError) as refused:
        ingest(paths, archive)
    assert str(refused.value).startswith(f"{archive}: no users.json")
    assert not any(paths.exports_dir.iterdir())  # nothing of the refused zip is kept


def test_a_refused_folder_says_what_it_holds_instead(tmp_path: Path) -> None:
    """An export nested deeper than the one top folder Beep looks into: the refusal says where users.json
    is; an empty folder: the refusal says it is empty."""
    import shutil
    import zipfile

    import pytest
    from beep.config import SAMPLE_EXPORT, Paths
    from beep.ingest import IngestError, ingest

    paths = Paths(duckdb=tmp_path / "b.duckdb", workdir=tmp_path / ".beep")
    nested = tmp_path / "nested"
    shutil.copytree(SAMPLE_EXPORT, nested / "outer" / "acme-export")
    archive = tmp_path / "nested.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(nested.rglob("*")):
            z.write(path, path.relative_to(nested).as_posix())
    for source in (nested, archive):
        with pytest.raises(IngestError) as refused:
            ingest(paths, source)
        assert "(one lies deeper: outer/acme-export/users.json)" in str(refused.value), refused.value
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="no users.json .* at the top of the export \\(the folder is empty\\)"):
        ingest(paths, tmp_path / "empty")


class _Tokenizer:
    """A tokenizer whose vocabulary holds the given strings whole; anything else is several tokens."""

    def __init__(self, vocab: dict[str, int]) -> None:
        self.vocab = vocab

    def tokenize(self, text: str) -> list[str]:
        return [text] if text in self.vocab else [*text, "</w>"]

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self.vocab.get(t, 1000 + len(t)) for t in self.tokenize(text)]


def test_hf_label_check_says_why_when_each_label_is_one_token_in_some_form() -> None:
    import pytest
    from beep.finetune.hf.data import LabelTokenError, label_tokens

    mixed = _Tokenizer({"1": 1, " 2": 2, "nil": 3, " nil": 4})  # '1' only bare, '2' only with a space
    with pytest.raises(LabelTokenError) as refused:
        label_tokens(mixed, ["1", "2", "nil"], name="tiny")
    message = str(refused.value)
    assert "labels  are" not in message and "(e.g. )" not in message
    assert "with a leading space, labels '1' are more than one token" in message
    assert "without a leading space, labels '2' are more than one token" in message
    shared = _Tokenizer({" 1": 5, " 2": 5, "1": 6, "2": 6})  # one token for two labels in both forms
    with pytest.raises(LabelTokenError, match="labels '1', '2' are the same token"):
        label_tokens(shared, ["1", "2"], name="tiny")
