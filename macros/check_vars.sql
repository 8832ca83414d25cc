{#-
  The project's vars are checked once, before anything is built (on-run-start in dbt_project.yml):
  a wrong value stops the run with what is wrong and what to pass instead, rather than as a SQL
  syntax error or a failing data test three models later.
-#}
{% macro check_beep_vars() %}
  {%- if execute -%}
    {%- set problems = [] -%}
    {%- for name in ['context_messages', 'max_prompt_chars', 'max_labels'] -%}
      {%- set value = var(name) -%}
      {%- if value is not number or value is boolean or value != value | int or value < 1 -%}
        {%- do problems.append(name ~ " must be a whole number of at least 1, got " ~ value | tojson) -%}
      {%- endif -%}
    {%- endfor -%}
    {%- set gap = var('conversation_gap_minutes') -%}
    {%- if gap is not number or gap is boolean or gap <= 0 -%}
      {%- do problems.append("conversation_gap_minutes must be a number of minutes above 0, got " ~ gap | tojson) -%}
    {%- endif -%}
    {%- if var('conversation_split') not in ['gap', 'reply'] -%}
      {%- do problems.append("conversation_split must be 'gap' (a quiet gap over conversation_gap_minutes starts a new conversation) or 'reply' (messages linked to the earlier message they answer), got " ~ var('conversation_split') | tojson) -%}
    {%- endif -%}
    {%- set quiet = var('conversation_quiet_messages') -%}
    {%- if quiet is not number or quiet is boolean or quiet != quiet | int or quiet < 0 -%}
      {%- do problems.append("conversation_quiet_messages must be a whole number of at least 0 (0: a message without other evidence never continues the previous one), got " ~ quiet | tojson) -%}
    {%- endif -%}
    {%- set suffix = var('prompt_suffix') -%}
    {%- if suffix is not string or suffix | trim == '' -%}
      {%- do problems.append("prompt_suffix must hold a visible separator such as \"\\n\\n###\\n\\n\" (messages are joined by blank lines, so white space alone cannot be told apart), got " ~ suffix | tojson) -%}
    {%- endif -%}
    {%- if var('mention_style') not in ['name', 'remove'] -%}
      {%- do problems.append("mention_style must be 'name' or 'remove', got " ~ var('mention_style') | tojson) -%}
    {%- endif -%}
    {%- for name in ['clean_links', 'clean_code', 'clean_emoji', 'clean_channel_ids', 'mask_pii'] -%}
      {%- if var(name) is not boolean -%}
        {%- do problems.append(name ~ " must be true or false, got " ~ var(name) | tojson) -%}
      {%- endif -%}
    {%- endfor -%}
    {%- if var('context_excludes_responder') is not boolean -%}
      {%- do problems.append("context_excludes_responder must be true or false (true removes the responder's own messages from the context window, the seed's rule; false, the default, keeps everyone's, as at prediction time), got " ~ var('context_excludes_responder') | tojson) -%}
    {%- endif -%}
    {%- for name in ['refine_provider', 'refine_model', 'refine_fewshot_hash'] -%}
      {%- set value = var(name) -%}
      {%- if value is not none and (value is not string or value | trim == '') -%}
        {%- do problems.append(name ~ " must be null (any) or the text to match in refine_runs, got " ~ value | tojson) -%}
      {%- endif -%}
    {%- endfor -%}
    {%- if var('refine_balance') is not boolean -%}
      {%- do problems.append("refine_balance must be true or false, got " ~ var('refine_balance') | tojson) -%}
    {%- endif -%}
    {%- set seed = var('refine_balance_seed') -%}
    {%- if seed is not number or seed is boolean or seed != seed | int -%}
      {%- do problems.append("refine_balance_seed must be a whole number, got " ~ seed | tojson) -%}
    {%- endif -%}
    {%- if problems -%}
      {{ exceptions.raise_compiler_error("Beep's dbt vars are wrong:\n  - " ~ problems | join("\n  - ") ~ "\nFix them in --vars (or dbt_project.yml) and run again.") }}
    {%- endif -%}
  {%- endif -%}
  select 1
{% endmacro %}
