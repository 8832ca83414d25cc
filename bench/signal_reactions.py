"""Do reactions tell who joins a conversation? A check on a built DuckDB file, without a model.

    .venv/bin/python bench/signal_reactions.py --db /tmp/gen/beep.duckdb

At every newcomer reply (a person's first message in a conversation someone else started), the
people of the channel who are not yet in the conversation are ranked by one count each, as of the
message before the reply, and the share of replies whose author each ranking puts first / in its top
5 is printed:

- messages written in the channel in the last 30 days (what activity alone says);
- reactions given in the channel in the last 30 days;
- both added; messages plus three times the reactions;
- reactions given to the previous message's author (anywhere, last 60 days), beside replies to that
  author (the ranker's `log_answered_last_author` counts the like).

An export gives a reaction no time: it counts as known REACTION_LAG after its message (as in
`beep.evaluate.alert_head.reaction_features`). The decision's own measurement, with the ranker and
the app's policy, is `python -m beep.evaluate.alert_head --db FILE` (docs/evaluation.md, "What
limits recall"); this is the ranker's side of the question (who writes next).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python_steps"))

from beep.db import open_duckdb  # noqa: E402
from beep.evaluate.alert_head import REACTION_LAG  # noqa: E402

SAMPLE = 3000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="a DuckDB file `beep build` built (any export with reactions)")
    parser.add_argument("--moments", type=int, default=SAMPLE, help=f"newcomer replies drawn at random (default {SAMPLE})")
    args = parser.parse_args()
    with open_duckdb(str(args.db), read_only=True) as con:
        lag = f"interval {int(REACTION_LAG)} second"
        con.execute(f"""
            create temp table moments as
            with conv as (
                select *, lag(message_at) over (partition by conversation_id order by position) as previous_at,
                       lag(user_id) over (partition by conversation_id order by position) as previous_user
                from int_conversations
            )
            select conversation_id, channel_folder, user_id as responder, previous_at as moment_at, previous_user,
                   prior_participant_ids
            from conv
            where position > 0 and not user_spoke_before and previous_at is not null
            using sample {int(args.moments)} rows (reservoir, 7)
        """)
        [(n_moments,)] = con.execute("select count(*) from moments").fetchall()
        [(n_reactions,)] = con.execute("select count(*) from stg_slack__reactions").fetchall()
        print(f"{args.db}: {n_moments:,} newcomer replies drawn, {n_reactions:,} reactions in the export")
        con.execute(f"""
            create temp table channel_counts as
            with acts as (
                select channel_folder, user_id, message_at as known_at, 'message' as kind from int_conversations
                union all
                select channel_folder, user_id, message_at + {lag}, 'reaction' from stg_slack__reactions
                where coalesce(is_known_user, false) and not coalesce(is_own_message, false)
            )
            select m.conversation_id, m.moment_at, m.responder, a.user_id,
                   count(*) filter (where kind = 'message') as messages,
                   count(*) filter (where kind = 'reaction') as reactions
            from moments m
            inner join acts a on a.channel_folder = m.channel_folder
                and a.known_at < m.moment_at and a.known_at >= m.moment_at - interval 30 day
            where not list_contains(m.prior_participant_ids, a.user_id)
            group by all
        """)
        con.execute(f"""
            create temp table author_counts as
            select m.conversation_id, m.moment_at, m.responder, r.user_id, count(*) as n, 'reactions' as kind
            from moments m
            inner join stg_slack__reactions r on r.message_user_id = m.previous_user
                and r.message_at + {lag} < m.moment_at and r.message_at >= m.moment_at - interval 60 day
                and coalesce(r.is_known_user, false) and not coalesce(r.is_own_message, false)
            where not list_contains(m.prior_participant_ids, r.user_id)
            group by all
            union all
            select m.conversation_id, m.moment_at, m.responder, i.user_id, count(*), 'replies'
            from moments m
            inner join int_conversations i on i.previous_user_id = m.previous_user
                and i.message_at < m.moment_at and i.message_at >= m.moment_at - interval 60 day
            where not list_contains(m.prior_participant_ids, i.user_id)
            group by all
        """)
        rankings = [
            ("messages in the channel, 30 days", "channel_counts", "messages", "true"),
            ("reactions in the channel, 30 days", "channel_counts", "reactions", "reactions > 0"),
            ("messages + reactions in the channel", "channel_counts", "messages + reactions", "true"),
            ("messages + 3 x reactions in the channel", "channel_counts", "messages + 3 * reactions", "true"),
            ("reactions to the previous author, 60 days", "author_counts", "n", "kind = 'reactions'"),
            ("replies to the previous author, 60 days", "author_counts", "n", "kind = 'replies'"),
        ]
        print("| ranking (people not in the conversation) | top-1 | top-5 | responder ranked at all |")
        print("| --- | ---: | ---: | ---: |")
        for name, table, score, where in rankings:
            [(top1, top5, ranked)] = con.execute(f"""
                with ranked as (
                    select *, row_number() over (partition by conversation_id, moment_at order by {score} desc, user_id) as rk
                    from {table} where {where}
                ),
                hit as (
                    select m.conversation_id, coalesce(min(r.rk), 1e9) as rk
                    from moments m
                    left join ranked r on r.conversation_id = m.conversation_id and r.moment_at = m.moment_at
                        and r.user_id = m.responder
                    group by m.conversation_id, m.moment_at, m.responder
                )
                select avg((rk <= 1)::int), avg((rk <= 5)::int), avg((rk < 1e9)::int) from hit
            """).fetchall()
            print(f"| {name} | {top1:.3f} | {top5:.3f} | {ranked:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
