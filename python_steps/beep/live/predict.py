"""`beep predict`: who should be alerted about a conversation in progress, by a chosen model.

The conversation comes either as text (messages separated by blank lines, oldest first) or from
the DuckDB data: the conversation of a channel that was in progress at a given time (its last
``context_messages`` messages up to then, cleaned by dbt, as the training prompts were built). A
prediction prompt holds everyone's messages, the responder's own included: who will answer is not
known yet. Training prompts have that form too unless the dataset was built with the dbt var
``context_excludes_responder`` true (the seed's rule); then `beep predict` says so, once. The
model decodes with its own export's label mapping, so labels always name the people it was
trained on.
"""

from __future__ import annotations

import difflib

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb

from beep.config import PROJECT_DIR, Paths
from beep.db import connect, table_exists
from beep.labels import NIL_LABEL, EvaluationInputError, ExportInfo, load_export
from beep.predictors.models import ModelRef, latest_model, resolve_model
from beep.rules.messages import CleaningRules, MessageRules, mentioned_user_ids
from beep.rules.prompts import PromptSettings

__all__ = ["Candidate", "Conversation", "Prediction", "PromptSettings", "conversation_at", "load_model", "parse_at",
           "predict", "text_conversation"]


@dataclass(frozen=True)
class Conversation:
    """What the model is asked about."""

    prompt: str
    channel_id: str | None = None
    channel_name: str | None = None
    prior_participant_ids: tuple[str, ...] = ()
    mentioned_user_ids: tuple[str, ...] = ()
    source: str = "text"  # text | channel
    conversation_id: str | None = None
    last_message_at: str | None = None
    n_messages: int = 0
    minutes_before_at: float | None = None  # how long before --at the last message was written
    quiet_too_long: bool = False  # longer than the conversation gap: the conversation may be over
    #: The conversation's messages (author, cleaned text, mentioned ids, epoch seconds), oldest first,
    #: when known (from the DuckDB data); the ranker reads who wrote what and when from them.
    messages: tuple[tuple[str | None, str, tuple[str, ...], float | None], ...] = ()

    def as_model_row(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "channel_id": self.channel_id,
            "channel_name": self.channel_name,
            "prior_participant_ids": list(self.prior_participant_ids),
            "mentioned_user_ids": list(self.mentioned_user_ids),
            "messages": list(self.messages),
        }


@dataclass(frozen=True)
class Candidate:
    rank: int
    label: str | None  # the person's label in the model's export (None: a person past its label limit)
    user_id: str | None
    user_name: str | None
    probability: float | None
    reason: str | None = None  # why this person (the ranker says: "mentioned", "active in #help today", ...)


@dataclass(frozen=True)
class Prediction:
    model: str
    export_id: str
    conversation: Conversation
    alert: bool  # the model's best guess is a person (not nil)
    nobody_probability: float | None
    candidates: list[Candidate] = field(default_factory=list)  # people only, best first
    unreadable_output: str | None = None  # what the model said when it decoded to no label
    warnings: list[str] = field(default_factory=list)  # e.g. trained on prompts of another form
    #: every person the model ranks, best first, before --exclude-participants and --min-probability:
    #: (user id, probability, reason); what the app's policy reads (beep.slack.preview)
    ranked_people: tuple[tuple[str | None, float | None, str | None], ...] = ()
    #: --text with the ranker: the end of the data, as of which it ranks ("today" in its reasons is that day)
    ranked_as_of: str | None = None

    def as_json(self) -> dict[str, Any]:
        conv = self.conversation
        return {
            "model": self.model,
            "export_id": self.export_id,
            "alert": self.alert,
            "nobody_probability": self.nobody_probability,
            "candidates": [c.__dict__ for c in self.candidates],
            "unreadable_output": self.unreadable_output,
            "warnings": list(self.warnings),
            "ranked_as_of": self.ranked_as_of,
            "conversation": {
                "source": conv.source,
                "channel_id": conv.channel_id,
                "channel_name": conv.channel_name,
                "last_message_at": conv.last_message_at,
                "n_messages": conv.n_messages,
                "minutes_before_at": conv.minutes_before_at,
                "quiet_too_long": conv.quiet_too_long,
                "prior_participant_ids": list(conv.prior_participant_ids),
                "mentioned_user_ids": list(conv.mentioned_user_ids),
                "prompt": conv.prompt,
            },
        }


def _resolve_channel(con: duckdb.DuckDBPyConnection, channel: str) -> tuple[str, str | None]:
    """A channel id or name (with or without #) -> (id, name), from the built dataset."""
    name = channel.lstrip("#")
    for table in ("stg_slack__channels", "training_examples"):
        if table_exists(con, table):
            row = con.execute(
                f"select channel_id, channel_name from {table} where channel_id = ? or channel_name = ? limit 1",
                [channel, name],
            ).fetchone()
            if row:
                return str(row[0]), row[1]
    raise EvaluationInputError(
        f"no channel {channel!r} (by id or name) in this DuckDB file: " + _channels_listed(name, _channel_names(con)))


def _channels_listed(name: str, known: list[str], shown: int = 12) -> str:
    """The channels to name after a channel that is not there: the names nearest ``name`` first
    (difflib), then the rest busiest first (``known`` is busiest first), at most ``shown`` of them."""
    if not known:
        return "build the dataset with `beep build`"
    nearest = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.6)
    ordered = nearest + [n for n in known if n not in nearest]
    listed = ", ".join(f"#{n}" for n in ordered[:shown]) + (f" and {len(ordered) - shown:,} more" if len(ordered) > shown else "")
    return f"the channels are {listed} " + ("(nearest names first, then busiest first)" if nearest else "(busiest first)")


def _channel_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The dataset's channel names (ids where a channel has no name), busiest first."""
    if table_exists(con, "int_conversations"):
        rows = con.execute(
            "select coalesce(channel_name, channel_id) as name, count(*) as n from int_conversations"
            " where coalesce(channel_name, channel_id) is not null group by all order by n desc, name"
        ).fetchall()
    elif table_exists(con, "stg_slack__channels"):
        rows = con.execute("select coalesce(channel_name, channel_id) as name from stg_slack__channels order by name").fetchall()
    else:
        return []
    return [str(r[0]) for r in rows]


def parse_at(at: str) -> datetime:
    """An ISO date/time (UTC unless it says otherwise) or a Slack ts like 1712345678.000100 (to the
    microsecond: the time of the message with that ts, exactly)."""
    exact = re.fullmatch(r"\s*(\d+)(?:\.(\d{1,6}))?\s*", at)
    if exact:
        return datetime(1970, 1, 1) + timedelta(seconds=int(exact[1]), microseconds=int((exact[2] or "").ljust(6, "0")))
    try:
        return datetime.fromtimestamp(float(at), tz=timezone.utc).replace(tzinfo=None)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError as err:
        raise EvaluationInputError(
            f"--at {at!r} is neither an ISO time (2025-03-04T10:15:00) nor a Slack ts (1712345678.000100)"
        ) from err
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def conversation_at(con: duckdb.DuckDBPyConnection, channel: str, at: datetime, settings: PromptSettings) -> Conversation:
    """The conversation of ``channel`` in progress at ``at``: the one holding the channel's latest
    message at or before ``at`` (a thread counts as its own conversation)."""
    if not table_exists(con, "int_conversations"):
        raise EvaluationInputError("table int_conversations is missing: build the dataset with `beep build`")
    channel_id, channel_name = _resolve_channel(con, channel)
    row = con.execute(
        """
        select conversation_id from int_conversations
        where channel_id = ? and message_at <= ?
        order by message_at desc, ts desc limit 1
        """,
        [channel_id, at],
    ).fetchone()
    if row is None:
        first = con.execute("select min(message_at) from int_conversations where channel_id = ?",
                            [channel_id]).fetchone()[0]
        since = (f" (its first message: {first.isoformat(sep=' ') if isinstance(first, datetime) else first}: "
                 "an --at from then on)" if first is not None
                 else " (it has no message in the built dataset)")
        raise EvaluationInputError(
            f"channel {channel!r} has no message at or before {at.isoformat(sep=' ')} in the built dataset{since}: "
            "pick a later --at"
        )
    messages = con.execute(
        """
        select user_id, clean_text, mentioned_user_ids, message_at, epoch(message_at) from int_conversations
        where conversation_id = ? and message_at <= ?
        order by position
        """,
        [row[0], at],
    ).fetchall()
    # everyone's last messages, as a training window is with context_excludes_responder false (the
    # default): who will answer is unknown, so nobody's messages can be left out (form_warnings)
    context = messages[-settings.context_messages :]
    participants: list[str] = []
    for user_id, *_ in reversed(messages):
        if user_id and user_id not in participants:
            participants.append(user_id)
    mentioned: list[str] = []
    for _u, _t, ids, _at, _epoch in reversed(context):
        for uid in ids or []:
            if uid not in mentioned:
                mentioned.append(uid)
    minutes = (at - context[-1][3]).total_seconds() / 60.0 if context and context[-1][3] is not None else None
    return Conversation(
        prompt=settings.prompt([text or "" for _u, text, _m, _a, _e in context]),
        channel_id=channel_id,
        channel_name=channel_name,
        prior_participant_ids=tuple(participants),
        mentioned_user_ids=tuple(mentioned),
        source="channel",
        conversation_id=str(row[0]),
        last_message_at=str(context[-1][3]) if context else None,
        n_messages=len(context),
        minutes_before_at=minutes,
        quiet_too_long=minutes is not None and minutes > settings.conversation_gap_minutes,
        messages=tuple((u, t or "", tuple(m or ()), float(e)) for u, t, m, _a, e in messages[-50:]),
    )


def text_conversation(
    text: str,
    settings: PromptSettings,
    *,
    channel_id: str | None = None,
    channel_name: str | None = None,
    rules: CleaningRules | None = None,
    user_names: dict[str, str] | None = None,
    handles: dict[str, str] | None = None,
) -> Conversation:
    """A conversation given as text: messages separated by blank lines, oldest first, each cleaned
    like the training prompts (links, code, e-mail addresses and phone numbers never reach a model;
    ``rules``: the dataset's, default the project's under dbt_project.yml's vars).
    Like a training prompt, it holds the last ``context_messages`` of them; ``<@U123>`` and ``@name``
    of a known user there count as mentions, as in the training data."""
    runner = MessageRules(rules or CleaningRules.from_project(PROJECT_DIR))
    try:
        parts = [part for part in text.replace("\r\n", "\n").split("\n\n") if part.strip()]
        cleaned = [(part, m) for part, m in ((part, runner.clean(part, user_names)) for part in parts) if m.strip()]
        if not cleaned:
            raise EvaluationInputError(
                "the conversation text is empty: pass --text, pipe text on stdin, or use --channel and --at")
        recent = cleaned[-settings.context_messages :]  # a training prompt holds at most this many messages
        return Conversation(
            prompt=settings.prompt([m for _, m in recent]), channel_id=channel_id, channel_name=channel_name,
            mentioned_user_ids=mentioned_user_ids([part for part, _ in recent], user_names, runner, handles),
            source="text", n_messages=len(recent),
        )
    finally:
        runner.close()


def _seconds(value: Any) -> str:
    """A timestamp as people read it: to the second (Slack's ts carries microseconds)."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else str(value)


#: ``@word`` typed by hand, not inside an e-mail address or a word (as mentioned_user_ids reads names).
_TYPED_MENTION = re.compile(r"(?<![\w.@])@([\w][\w.-]*\w|\w)")


def unknown_mentions(text: str, user_names: dict[str, str], handles: dict[str, str] | None = None) -> list[str]:
    """The mentions in ``text`` that name nobody of the workspace: ``<@U…>`` ids not in users.json, and
    ``@name`` typed for no known user name nor handle (those are not read as mentions), each once."""
    ids = set(user_names)
    names = {n.lower() for n in user_names.values()} | {h.lower() for h in (handles or {}).values() if h}
    out: list[str] = []
    for uid in re.findall(r"<@([A-Z0-9]+)(?:\|[^>]*)?>", text):
        if uid not in ids and f"<@{uid}>" not in out:
            out.append(f"<@{uid}>")
    for word in _TYPED_MENTION.findall(re.sub(r"<[^>]*>", " ", text)):
        if word.lower() not in names and f"@{word}" not in out and word.lower() not in ("here", "channel", "everyone"):
            out.append(f"@{word}")
    return out


def _handles(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Each user's handle (users.json's ``name``, typed as ``@handle``), where the table has them."""
    try:
        return {str(u): str(h) for u, h in con.execute("select user_id, handle from stg_slack__users").fetchall() if h}
    except duckdb.Error:
        return {}


def _user_names(paths: Paths) -> dict[str, str]:
    with connect(paths.duckdb, read_only=True) as con:
        if not table_exists(con, "stg_slack__users"):
            return {}
        return {str(u): str(n) for u, n in con.execute("select user_id, user_name from stg_slack__users").fetchall() if n}


def load_model(paths: Paths, model: str | None, *, provider: str | None = None, export_id: str | None = None) -> tuple[ModelRef, ExportInfo]:
    with connect(paths.duckdb, read_only=True) as con:
        ref = resolve_model(con, model or latest_model(con), provider=provider)
        export_id = export_id or ref.export_id
        if not export_id:
            raise EvaluationInputError(f"model {ref.name} comes from no fine-tune job here, so its labels are unknown: pass --export")
        return ref, load_export(con, export_id)


@dataclass
class _Asked:
    """The conversation to rank, read from the workspace, with what reading it found worth saying."""

    conv: Conversation
    settings: PromptSettings
    moment: datetime | None  # --at, or the end of the data when --at is after it
    warnings: list[str]
    as_of: str | None = None  # --text: the end of the data, as of which the ranker's state is


def _read_conversation(paths: Paths, *, text: str | None, channel: str | None, at: str | None) -> _Asked:
    """The conversation of --text (in --channel if given), or the one in progress in --channel at --at."""
    from beep.build import last_build_vars

    warnings: list[str] = []
    moment: datetime | None = None
    as_of: str | None = None
    with connect(paths.duckdb, read_only=True) as con:
        built_with = last_build_vars(con)
        settings = PromptSettings.from_project(paths.project_dir, built_with)
        if text is not None:
            channel_id, channel_name = _resolve_channel(con, channel) if channel else (None, None)
            names = (
                {str(u): str(n) for u, n in con.execute("select user_id, user_name from stg_slack__users").fetchall() if n}
                if table_exists(con, "stg_slack__users")
                else {}
            )
            handles = _handles(con) if names else {}
            conv = text_conversation(
                text, settings, channel_id=channel_id, channel_name=channel_name,
                rules=CleaningRules.from_project(paths.project_dir, built_with), user_names=names, handles=handles,
            )
            unknown = unknown_mentions(text, names, handles) if names else []
            if unknown:
                warnings.append(
                    f"{', '.join(unknown[:10])}{' …' if len(unknown) > 10 else ''} "
                    f"{'names' if len(unknown) == 1 else 'name'} nobody in the workspace's "
                    "users.json, so no one known is mentioned by them (type @ and a user name as the data has it, "
                    "or <@U…> with a known user id)")
            end = (con.execute("select max(message_at) from int_conversations").fetchone()[0]
                   if table_exists(con, "int_conversations") else None)
            if end is not None:
                as_of = _seconds(end)
        else:
            assert channel and at
            moment = parse_at(at)
            conv = conversation_at(con, channel, moment, settings)
            end = con.execute("select max(message_at) from int_conversations").fetchone()[0]
            if end is not None and moment > end:
                warnings.append(
                    f"--at {moment.isoformat(sep=' ')} is after the end of the data (its last message: {end}): "
                    f"ranked with the workspace as of then, on the conversation in progress in "
                    f"#{conv.channel_name or conv.channel_id} at the end ({conv.last_message_at}); "
                    "what happened since is not in the data"
                )
                moment = end
    return _Asked(conv, settings, moment, warnings, as_of)


def _model_output(paths: Paths, ref: ModelRef, export: ExportInfo, options: Any, asked: _Asked) -> Any:
    """The model's answer for the conversation: the ranker as of --at when there is one, else its predict()."""
    from beep.predictors import (
        PredictorOptions as EvalOptions,  # what a predictor reads of evaluate's options
    )
    from beep.predictors import make_predictor

    # ask for as many alternatives as providers give (20), so "nobody" has a probability even when
    # nil is not among the k people shown
    options = options or EvalOptions(top_k=20)
    predictor = make_predictor(ref, export, options, paths)
    from beep.predictors.local import RankerPredictor

    if asked.moment is not None and isinstance(predictor, RankerPredictor):
        # the ranker with the workspace as of --at (not as of the end of the data): the same state,
        # candidates and features `beep evaluate` ranks with right after a message written then
        return _rank_at(predictor, paths, asked.conv, asked.moment)
    return predictor.predict([asked.conv.as_model_row()])[0]


def _ranked_people(paths: Paths, export: ExportInfo, output: Any, conv: Conversation, *, k: int,
                   exclude_participants: bool, min_probability: float | None,
                   ) -> tuple[list[tuple[Any, Any, Any]], list[tuple[Any, Any, Any]], list[Candidate],
                              dict[str, float | None]]:
    """The people the output ranks, those kept by the filters, the first ``k`` of them as candidates,
    and the probability of each label."""
    names = {lab.label: (lab.user_id, lab.user_name) for lab in export.labels}
    label_of = {lab.user_id: lab.label for lab in export.labels if lab.user_id}
    user_names = {**{lab.user_id: lab.user_name for lab in export.labels if lab.user_id and lab.user_name},
                  **_user_names(paths)}
    probs = {label: (math.exp(lp) if lp is not None else None) for label, lp in output.ranked}
    if output.people:  # a model that ranks people (the ranker): every person, labelled or not
        people = [(u, p, r) for u, p, r in output.people]
    else:  # a label model: its labels read as people
        people = [(names.get(label, (None, None))[0], probs.get(label), None) for label, _ in output.ranked
                  if label != NIL_LABEL]
    inside = set(conv.prior_participant_ids)
    if exclude_participants:
        # and the people Slack notifies by itself (mentioned in the conversation's last messages): the app
        # never alerts them either (beep.slack.alerts, the same rule)
        from beep.rules.notified import notified_by_slack

        inside |= notified_by_slack([conv.mentioned_user_ids])
    kept = [(u, p, r) for u, p, r in people
            if not (exclude_participants and u in inside)
            and not (min_probability is not None and (p is None or p < min_probability))]
    candidates = [
        Candidate(rank=i, label=label_of.get(u) if u else None, user_id=u,
                  user_name=user_names.get(u) if u else None, probability=p, reason=r)
        for i, (u, p, r) in enumerate(kept[:k], start=1)
    ]
    return people, kept, candidates, probs


def predict(
    paths: Paths,
    *,
    model: str | None = None,
    text: str | None = None,
    channel: str | None = None,
    at: str | None = None,
    k: int = 3,
    provider: str | None = None,
    export_id: str | None = None,
    options: Any = None,
    exclude_participants: bool = False,
    min_probability: float | None = None,
) -> Prediction:
    """Rank the people to alert about one conversation (see the module docstring).

    ``exclude_participants``: list only people an alert could go to, as `beep slack serve` decides: not
    yet in the conversation, and not @-mentioned in its last messages (Slack notifies them itself);
    ``min_probability``: list only people at least this likely, and say
    "nobody" when no one is."""
    ref, export = load_model(paths, model, provider=provider, export_id=export_id)
    if text is None and not (channel and at):
        raise EvaluationInputError("say which conversation: --text (or text on stdin), or --channel with --at")
    asked = _read_conversation(paths, text=text, channel=channel, at=at)
    output = _model_output(paths, ref, export, options, asked)
    people, kept, candidates, probs = _ranked_people(paths, export, output, asked.conv, k=k,
                                             exclude_participants=exclude_participants,
                                             min_probability=min_probability)
    best = output.predicted_label
    nobody = output.nobody if output.nobody is not None else probs.get(NIL_LABEL)
    alert = best is not None and best != NIL_LABEL
    if min_probability is not None and not kept:
        alert = False
    if exclude_participants and not kept:
        alert = False
    return Prediction(
        model=ref.name,
        export_id=export.export_id,
        conversation=asked.conv,
        alert=alert,
        nobody_probability=nobody,
        candidates=candidates,
        unreadable_output=output.raw_output if best is None else None,
        warnings=asked.settings.form_warnings() + asked.warnings,
        ranked_people=tuple(people),
        ranked_as_of=asked.as_of if output.people else None,
    )


def _rank_at(predictor: Any, paths: Paths, conv: Conversation, moment: datetime) -> Any:
    """The ranker's answer for the conversation in progress at ``moment``, with the workspace state as
    of then (every message written at or before it); times and "today" in reasons are ``moment``'s."""
    model = predictor.model
    with connect(paths.duckdb, read_only=True) as con:
        at = float(con.execute("select epoch(cast(? as timestamp))", [moment]).fetchone()[0])  # as the replay reads times
        row = con.execute(
            "select coalesce(channel_id, channel_folder), coalesce(channel_name, channel_folder) from int_conversations"
            " where conversation_id = ? limit 1",
            [conv.conversation_id],
        ).fetchone()
        channel_key, channel_name = (row[0], row[1]) if row else (conv.channel_id, conv.channel_name)

        def rebuilt(state: Any) -> Any:  # idle for longer than the state keeps a conversation: from its messages
            m = conv.messages
            return model.conversation(channel_key, [x[0] for x in m], [x[1] for x in m], [x[2] for x in m],
                                      [x[3] if x[3] is not None else at for x in m], state=state)

        ranked = model.rank_at(con, str(conv.conversation_id), at, channel_name=channel_name, fallback=rebuilt)
    return predictor._output(ranked)
