"""Beep as a Slack app (`beep slack serve`): Socket Mode, live conversations, an alert policy, DuckDB.

- :mod:`beep.slack.conversations`: live messages placed in conversations by the dataset's rules;
- :mod:`beep.slack.scoring`: the model, through the interface `beep predict` uses, with live state;
- :mod:`beep.slack.alerts`: whom to alert (limits, quiet hours, opt-out, dry run);
- :mod:`beep.slack.store`: short DuckDB writes (alerts, alert_feedback, slack_messages, slack_opt_outs);
- :mod:`beep.slack.service`: what each event does (DMs from sender threads, crash reconciliation);
- :mod:`beep.slack.inbox`: the durable inbox every envelope is written to before its ack;
- :mod:`beep.slack.intake`: Socket Mode intake (journal, then ack), the worker, the dead-socket watchdog;
- :mod:`beep.slack.app`: `beep slack serve` wired together;
- :mod:`beep.slack.check`: `beep slack check`.
"""
