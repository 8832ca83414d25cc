"""The dataset's rules, read by the batch build (dbt) and the live path (Slack app, `beep predict`).

One definition each (docs/rules.md):

- the project's vars: declared, with their defaults, only in dbt_project.yml; checked by
  macros/check_vars.sql for dbt and for Python alike (:mod:`beep.rules.project_vars`);
- which messages count (subtype classes and the exclusion reason), the text cleaning and the
  mentions: dbt macros (macros/message_rules.sql, clean_slack_text.sql, list_helpers.sql) that the
  models call and that :mod:`beep.rules.messages` renders once (:mod:`beep.rules.dbt_macros`) and
  runs in DuckDB on each live message;
- the conversation split and the prompt: the dbt models, and the live tracker
  (:mod:`beep.slack.conversations`) and :class:`beep.rules.prompts.PromptSettings` built from the
  same vars, held equal by tests/python/test_rules_parity.py.

This package is the low-level room: it imports nothing from evaluate/, slack/ or finetune/.
"""
