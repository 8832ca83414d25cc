"""Beep as a Slack app (`beep slack serve`): Socket Mode, live conversations, an alert policy, DuckDB.

- :mod:`beep.slack.conversations`: live messages placed in conversations by the dataset's rules;
- :mod:`beep.slack.scoring`: the model, through the interface `beep predict` uses, with live state;
- :mod:`beep.slack.alerts`: whom to alert (limits, quiet hours, opt-out, dry run);
- :mod:`beep.slack.store`: short DuckDB writes (alerts, alert_feedback, slack_messages, slack_opt_outs);
- :mod:`beep.slack.service`: what each event does; :mod:`beep.slack.app`: the Bolt app in Socket Mode;
- :mod:`beep.slack.check`: `beep slack check`.
"""
