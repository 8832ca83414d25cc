{#-
  The Spark side of macros/clean_slack_text.sql, macros/portable.sql (json_string, regex_matches)
  and slack_mentioned_user_ids: the same rules, in the same order, as Java regular expressions.
  Patterns are written here as the regular expression itself (spark_regexp_replace escapes them for
  Spark's string literals); replacements name groups $1, $2.
-#}

{% macro spark__clean_slack_text(text, user_names) %}
  {%- set t = 'coalesce(' ~ text ~ ", '')" -%}

  {%- if var('clean_code') -%}
    {%- set t = spark_regexp_replace(t, '(?s)```.*?(```|\\z)', ' ') -%}
    {%- set t = spark_regexp_replace(t, '`[^`\\n]*`', ' ') -%}
  {%- endif -%}

  {%- if var('clean_links') -%}
    {%- set t = spark_regexp_replace(t, '<(?:https?|ftp|mailto):[^>|]*\\|([^>]*)>', '$1') -%}
    {%- set t = spark_regexp_replace(t, '<(?:https?|ftp|mailto):[^>]*>', ' ') -%}
    {%- set t = spark_regexp_replace(t, '(?:https?|ftp)://[^\\t\\n\\f\\r <>]+', ' ') -%}
  {%- endif -%}

  {%- if var('mask_pii') -%}
    {%- set t = spark_regexp_replace(t, '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}', '[email]') -%}
    {%- set t = spark_regexp_replace(t, '(?:\\+\\d{1,3}(?:[\\t\\n\\f\\r .-]?\\(?\\d{2,6}\\)?){2,4}|\\(\\d{2,4}\\)[\\t\\n\\f\\r ]?\\d{3,4}[\\t\\n\\f\\r .-]\\d{3,4}(?![A-Za-z0-9_])|(?<![A-Za-z0-9_])\\d{3}[.-]\\d{3,4}[.-]\\d{4}(?![A-Za-z0-9_]))', '[phone]') -%}
  {%- endif -%}

  {#- user mentions: <@U1|name> -> <@U1>, then each id -> @name (or removed) -#}
  {%- set t = spark_regexp_replace(t, '<@([UW][A-Z0-9]+)\\|[^>]*>', '<@$1>') -%}
  {%- if var('mention_style') == 'name' -%}
    {%- set t = "element_at(transform(array(" ~ t ~ "), s -> aggregate(array_distinct(regexp_extract_all(s, "
                ~ spark_sql_string('<@([UW][A-Z0-9]+)>') ~ ", 1)), s, "
                ~ "(acc, uid) -> replace(acc, '<@' || uid || '>', '@' || coalesce(try_element_at(" ~ user_names ~ ", uid), 'someone')))), 1)" -%}
  {%- endif -%}
  {%- set t = spark_regexp_replace(t, '<@[^>]*>', ' ') -%}

  {%- if var('clean_channel_ids') -%}
    {%- set t = spark_regexp_replace(t, '<#[A-Z0-9]+\\|([^>]+)>', '#$1') -%}
    {%- set t = spark_regexp_replace(t, '<#[^>]*>', ' ') -%}
  {%- endif -%}

  {#- broadcast and group mentions -#}
  {%- set t = spark_regexp_replace(t, '<!subteam\\^[A-Z0-9]+\\|(@?)([^>]*)>', '@$2') -%}
  {%- set t = spark_regexp_replace(t, '<!(here|channel|everyone)(?:\\|[^>]*)?>', '@$1') -%}
  {%- set t = spark_regexp_replace(t, '<![^>]*>', ' ') -%}

  {%- if var('clean_emoji') -%}
    {%- set t = spark_regexp_replace(t, "(^|[^A-Za-z0-9])(?::[a-z+][a-z0-9_+'-]*:)+", '$1 ') -%}
    {%- set t = spark_regexp_replace(t, '(\\p{So}[\\x{fe0f}\\x{1f3fb}-\\x{1f3ff}]*(?:\\x{200d}\\p{So}[\\x{fe0f}\\x{1f3fb}-\\x{1f3ff}]*)+)|[\\p{So}\\x{200d}\\x{fe0f}\\x{20e3}\\x{1f3fb}-\\x{1f3ff}]', '$1') -%}
  {%- endif -%}

  {#- HTML entities: Slack escapes only these three (&amp; last) -#}
  {%- set t = "replace(replace(replace(" ~ t ~ ", '&lt;', '<'), '&gt;', '>'), '&amp;', '&')" -%}

  {#- control characters (NUL included) and bidi marks -#}
  {%- set t = spark_regexp_replace(t, '[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\\x{200e}\\x{200f}\\x{202a}-\\x{202e}\\x{2066}-\\x{2069}]', '') -%}

  {#- the prompt suffix's text must never occur inside a prompt -#}
  {%- set suffix_core = var('prompt_suffix') | trim -%}
  {%- if suffix_core -%}
    {%- set t = "replace(" ~ t ~ ", " ~ spark_sql_string(suffix_core) ~ ", ' ')" -%}
  {%- endif -%}

  {#- white space: runs of blanks -> one space, 3+ newlines -> a blank line, trimmed -#}
  {%- set t = spark_regexp_replace(t, '[ \\t\\r]+', ' ') -%}
  {%- set t = "regexp_replace(" ~ t ~ ", " ~ spark_sql_string(' ?\\n ?') ~ ", chr(10))" -%}
  {%- set t = "regexp_replace(" ~ t ~ ", " ~ spark_sql_string('\\n{3,}') ~ ", chr(10) || chr(10))" -%}
  {{ spark_regexp_replace(t, '^[\\t\\n\\f\\r ]+|[\\t\\n\\f\\r ]+\\z', '') }}
{% endmacro %}

{# User ids mentioned in raw Slack text, distinct, in order of first mention. #}
{% macro spark__slack_mentioned_user_ids(text_column) %}
  array_distinct(regexp_extract_all(coalesce({{ text_column }}, ''), {{ spark_sql_string('<@([UW][A-Z0-9]+)(?:\\|[^>]*)?>') }}, 1))
{% endmacro %}

{% macro spark__json_string(json_column, path) %}get_json_object({{ json_column }}, {{ spark_sql_string(path) }}){% endmacro %}

{# Whether a string matches a regular expression anywhere (Java's syntax; the patterns Beep uses mean the same in RE2). #}
{% macro spark__regex_matches(expression, pattern) %}({{ expression }} rlike {{ spark_sql_string(pattern) }}){% endmacro %}
