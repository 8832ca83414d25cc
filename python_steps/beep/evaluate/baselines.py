"""Baselines: the yardsticks every evaluated model is shown beside, on the same split.

Each baseline is a ranking of the export's labels for one example, learnt from the export's train
split only (never from the split being evaluated):

* ``baseline:majority`` — the labels by how often they answer in train; the same for everyone.
* ``baseline:channel_majority`` — the labels by how often they answer in this channel in train,
  then the global order for the rest (a channel unseen in train gets the global order).
* ``baseline:recent_participant`` — the conversation's earlier participants, most recent first,
  but without the author of the latest message (a reply target is by someone else than the
  previous message's author, so that person never answers it: in A–B–A the next one is B), then
  the channel order. On real Slack channels most next responders are already in the conversation,
  so this is the one a model must beat to be worth anything for alerting.
* ``baseline:mentioned_then_channel`` — the people @-mentioned in the context, then the channel
  order.

Baselines rank *people* (the responders of the train split, whatever label the export gave them,
at most :data:`PEOPLE_CAP` per example) and, from that, labels (a person's label, ``other`` for the
people past the export's label limit, then every remaining label by train frequency). They give no
probabilities (their log-probabilities are stored as null).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from beep.labels import OTHER_LABEL, label_sort_key

MAJORITY = "baseline:majority"
CHANNEL_MAJORITY = "baseline:channel_majority"
RECENT_PARTICIPANT = "baseline:recent_participant"
MENTIONED_THEN_CHANNEL = "baseline:mentioned_then_channel"
#: Every baseline, in the order reports show them.
BASELINES: tuple[str, ...] = (MAJORITY, CHANNEL_MAJORITY, RECENT_PARTICIPANT, MENTIONED_THEN_CHANNEL)
#: The baselines whose ranking is the same for every example of a channel: :meth:`Baselines.ranking`
#: returns one list object for all of them.
STATIC_BASELINES: tuple[str, ...] = (MAJORITY, CHANNEL_MAJORITY)


#: At most this many people are ranked per example (a responder further down counts as a miss).
PEOPLE_CAP = 50


@dataclass(frozen=True)
class TrainRow:
    """What the baselines learn from: a train example's channel, true label and responder."""

    channel_id: str | None
    label: str
    responder_user_id: str | None = None


@dataclass(frozen=True)
class BaselineInput:
    """What the baselines see of an example at prediction time."""

    channel_id: str | None
    prior_participant_ids: Sequence[str] = field(default_factory=tuple)
    mentioned_user_ids: Sequence[str] = field(default_factory=tuple)


def _ordered(counts: Counter[str], tie_order: Mapping[str, int]) -> list[str]:
    """Labels by count (descending), ties by ``tie_order`` then label order."""
    return sorted(counts, key=lambda label: (-counts[label], tie_order.get(label, 0), label_sort_key(label)))


def _dedupe(labels: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for label in labels:
        if label not in seen:
            seen.add(label)
            out.append(label)
    return out


class Baselines:
    """Rankings learnt from one export's train split.

    ``labels`` are every label of the export (a label with no train example still gets ranked, last);
    ``label_of_user`` maps a user id to the export's label for that user.
    """

    def __init__(self, train: Sequence[TrainRow], labels: Sequence[str], label_of_user: Mapping[str, str]) -> None:
        self.label_of_user = dict(label_of_user)
        self.other_label = OTHER_LABEL if OTHER_LABEL in labels else None
        total = Counter(row.label for row in train)
        for label in labels:
            total.setdefault(label, 0)
        alphabetical = {label: i for i, label in enumerate(sorted(total, key=label_sort_key))}
        self.global_order = _ordered(total, alphabetical)
        self._global_position = {label: i for i, label in enumerate(self.global_order)}
        self._static: dict[tuple[str, str | None], tuple[list[str], list[str]]] = {}
        people = Counter(row.responder_user_id for row in train if row.responder_user_id)
        self.global_people = sorted(people, key=lambda u: (-people[u], u))[:PEOPLE_CAP]
        by_channel: dict[str | None, Counter[str]] = defaultdict(Counter)
        for row in train:
            if row.responder_user_id:
                by_channel[row.channel_id][row.responder_user_id] += 1
        self._channel_people: dict[str | None, list[str]] = {
            channel: _dedupe(sorted(counts, key=lambda u: (-counts[u], u))[:PEOPLE_CAP] + self.global_people)[:PEOPLE_CAP]
            for channel, counts in by_channel.items()
        }

    def channel_people(self, channel_id: str | None) -> list[str]:
        """The people by how often they answered in this channel, then globally."""
        return self._channel_people.get(channel_id, self.global_people)

    def rank_people(self, baseline: str, example: BaselineInput) -> list[str]:
        """The people ``baseline`` ranks for ``example``, best first (at most PEOPLE_CAP)."""
        if baseline == MAJORITY:
            return list(self.global_people)
        if baseline == CHANNEL_MAJORITY:
            return list(self.channel_people(example.channel_id))
        if baseline == RECENT_PARTICIPANT:
            # prior_participant_ids[0] wrote the latest message: the one asking, not the one answering
            first = list(example.prior_participant_ids or ())[1:]
        elif baseline == MENTIONED_THEN_CHANNEL:
            first = list(example.mentioned_user_ids or ())
        else:
            raise ValueError(f"unknown baseline {baseline!r}: choose one of {', '.join(BASELINES)}")
        return _dedupe(first + self.channel_people(example.channel_id))[:PEOPLE_CAP]

    def person_labels(self, people: Sequence[str]) -> list[str]:
        """The labels of a ranking of people, deduplicated (``other`` for people without a label)."""
        return _dedupe([lab for lab in (self.label_of_user.get(u, self.other_label) for u in people) if lab is not None])

    def ranking(self, baseline: str, example: BaselineInput) -> tuple[list[str], list[str]]:
        """(people, their labels) for ``example``; the same lists for every example of a channel
        are computed once."""
        if baseline in STATIC_BASELINES:
            key = (baseline, None if baseline == MAJORITY else example.channel_id)
            cached = self._static.get(key)
            if cached is None:
                people = self.rank_people(baseline, example)
                cached = self._static[key] = (people, self.person_labels(people))
            return cached
        people = self.rank_people(baseline, example)
        return people, self.person_labels(people)

    def labels_of(self, people: Sequence[str], top: int | None = None, *, first: list[str] | None = None) -> list[str]:
        """Labels from a ranking of people (``other`` for people without a label of their own), then
        every other label by train frequency; the first ``top`` of them when given."""
        first = list(self.person_labels(people) if first is None else first)
        if top is not None and len(first) >= top:
            return first[:top]
        taken = set(first)
        for label in self.global_order:
            if top is not None and len(first) >= top:
                break
            if label not in taken:
                first.append(label)
        return first

    def label_rank(self, people: Sequence[str], label: str, *, first: list[str] | None = None) -> int | None:
        """The 1-based rank of ``label`` in ``labels_of(people)``, without building the whole list."""
        first = self.person_labels(people) if first is None else first
        if label in first:
            return first.index(label) + 1
        position = self._global_position.get(label)
        if position is None:
            return None
        before = sum(1 for lab in first if self._global_position.get(lab, len(self.global_order)) < position)
        return len(first) + position - before + 1

    def rank(self, baseline: str, example: BaselineInput) -> list[str]:
        """The ranked labels ``baseline`` gives ``example``, best first."""
        return self.labels_of(self.rank_people(baseline, example))
