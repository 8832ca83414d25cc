"""The export writes each line with render.LineWriter, built from its parts; it must be byte for byte
what ``dumps`` of the record the checks read gives, whatever the text holds."""

from __future__ import annotations

import pytest

from beep.export.render import LineWriter, chat_record, completion_record, dumps, record_answer, record_prompt

TEXTS = [
    "hello\n\n###\n\n",
    "",
    'quotes " and \\ backslashes \\" and a slash /',
    "control \x00 \x01 \x08 \x0c \x1f \x7f \t \r \n",
    "unicode: é ü 日本語 🎉 \u2028 \u2029 \ufeff",
    "a lone surrogate \ud800 stays as it is",
    " 12",
]


@pytest.mark.parametrize("system_prompt", [None, "", "You answer with a label.", 'a "quoted" system\n🎉'])
@pytest.mark.parametrize("prompt", TEXTS + [None])
def test_a_chat_line_is_dumps_of_its_record(system_prompt: str | None, prompt: str | None) -> None:
    for answer in ("3", " nil", "ü"):
        record = chat_record(prompt, answer, system_prompt)  # type: ignore[arg-type]
        assert LineWriter("chat", system_prompt).line(prompt, answer) == dumps(record)


@pytest.mark.parametrize("prompt", TEXTS + [None])
def test_a_completion_line_is_dumps_of_its_record(prompt: str | None) -> None:
    for answer in ("3", " nil", None):
        record = completion_record(prompt, answer)  # type: ignore[arg-type]
        assert LineWriter("completion", "ignored").line(prompt, answer) == dumps(record)


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format 'tsv'"):
        LineWriter("tsv", None)


def test_the_prompt_and_answer_read_back_are_the_last_user_and_assistant_messages() -> None:
    record = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "1"},
                           {"role": "user", "content": "b"}, {"role": "assistant", "content": 2}]}
    assert record_prompt(record) == "b"
    assert record_answer(record) is None  # the last answer is not a string
    assert record_prompt({"messages": ["x", {"role": "system", "content": "s"}]}) is None
    assert record_prompt({"prompt": "p", "completion": "c"}) == "p"
    assert record_answer({"prompt": "p", "completion": 3}) is None
