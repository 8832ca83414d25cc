"""The workspace profiles `beep sample generate --profile …` writes: named settings, one dataclass each.

A profile says how big a workspace is by default and how its people behave: how often a conversation
becomes a thread, how many replies it draws, how often people share files or edit, whether reactions
are drawn at random or from the conversation, whether a reply in a channel run @-mentions whom it
answers, and whether people who join a conversation unasked are drawn only while present (their
hour-of-week profile). Who the people are and how they choose whom to answer is the profile's
channel simulator (`sample_sim.py`, `large_sim.py`), planned by its workspace (`workspace.py`,
`large_workspace.py`); `generator.py` maps a profile to those.

The `sample` profile's settings are those the bundled sample_data/acme-slack-export was written with,
and `large`'s those of its benchmarks: changing a number changes their bytes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """How big a workspace is: the defaults of `--messages`, `--people`, `--channels`, `--days`."""

    messages: int
    people: int
    channels: int
    days: int


@dataclass(frozen=True)
class Profile:
    """One kind of workspace: its defaults and the rates its channels are simulated with."""

    name: str
    #: Names the random streams (`<stream>:<seed>:channel:<index>`): a profile's own bytes for a seed.
    stream: str
    defaults: Sizes
    #: The fewest `--people` it can plan (the large one needs enough people for its teams).
    min_people: int
    # ---- conversations
    #: Share of work conversations (small talk: `smalltalk_thread_share`) that become threads.
    thread_share: float = 0.55
    smalltalk_thread_share: float = 0.3
    #: Share of conversations that get no reply at all.
    unanswered_share: float = 0.12
    #: Replies per conversation: 1 + an exponential draw of this mean, at most `max_replies`.
    mean_replies: float = 4.0
    max_replies: int = 24
    # ---- episodes besides conversations (added to the channel's own bot rate)
    topic_change_rate: float = 0.008
    me_message_rate: float = 0.004
    # ---- messages
    file_share_rate: float = 0.03
    edit_rate: float = 0.05
    #: Reactions drawn at random on this share of user messages (0: reactions come from the conversation).
    random_reaction_rate: float = 0.12
    #: In a channel run, a reply @-mentions the author of the message it answers this often.
    address_rate: float = 0.0
    #: People who join a conversation unasked are drawn only while present: tries before anyone will do
    #: (0: presence plays no part).
    presence_tries: int = 0
    # ---- files
    #: A silent day between two written ones gets an empty `[]` day file this often.
    empty_day_rate: float = 0.02
    #: Writes truth.csv (who answers whom) by default.
    truth: bool = False


#: The bundled 10-person team (sample_data/acme-slack-export is its default output with seed 7).
SAMPLE = Profile(
    name="sample",
    stream="beep-sample",
    defaults=Sizes(messages=5000, people=10, channels=6, days=182),
    min_people=2,
)

#: A company workspace: teams owning components, long-tailed activity, bots, joiners and leavers,
#: reactions from the conversation, presence, and truth.csv.
LARGE = Profile(
    name="large",
    stream="beep-large",
    defaults=Sizes(messages=500_000, people=2000, channels=300, days=365),
    min_people=10,
    topic_change_rate=0.004,
    me_message_rate=0.003,
    file_share_rate=0.025,
    random_reaction_rate=0.0,
    address_rate=0.2,
    presence_tries=10,
    empty_day_rate=0.002,
    truth=True,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (SAMPLE, LARGE)}
#: The seed both profiles use by default.
DEFAULT_SEED = 7
