{#
  Clean Slack message text for a prompt. Each rule is switchable by a project var:
    clean_code         ```blocks``` and `inline code` removed
    clean_links        <https://x|label> -> label, <https://x> and bare URLs removed
    mask_pii           e-mail addresses -> [email], phone numbers -> [phone]
    mention_style      'name': <@U123> -> @Display Name (a real signal); 'remove': dropped
    clean_channel_ids  <#C123|general> -> #general, <#C123> dropped
    clean_emoji        :shortcodes: and pictographic emoji removed (a ZWJ sequence such as 👩‍💻 is kept whole)
  Always: broadcast mentions (<!here>) become @here, HTML entities are decoded, control characters
  and bidi marks are removed, the prompt suffix's text (e.g. ###) is removed so it never occurs
  inside a prompt, and white space is tidied.

  user_names: an expression of a MAP(user_id -> display name), used when mention_style = 'name'.

  DuckDB: a rule that cannot match a text is skipped for it, with the same result. A text without a
  '<' skips the rules of <links>, <@mentions>, <#channels> and <!broadcasts> (no rule before them
  writes a '<'); a text without any character a markup rule looks for (< & ` @ : a digit, a
  control character, anything outside ASCII) goes through the suffix and white-space rules only.
  On a 1,000,000-message export 85 % of the texts have no '<' and 54 % no such character at all.
#}
{% macro clean_slack_text(text, user_names) %}
  {{ return(adapter.dispatch('clean_slack_text', 'beep')(text, user_names)) }}
{% endmacro %}

{#- The rules in order, as SQL: [the text, every rule applied to it, the rules that need no '<' applied]. -#}
{% macro duckdb__clean_slack_text_chains(text, user_names) %}
  {%- set raw = 'coalesce(' ~ text ~ ", '')" -%}
  {#- Each rule once, in order: [regexp_replace's arguments after the text, whether it applies to a
      text without a '<']. t: the text through every rule; n: the same rules without those that need
      a '<' (links in <>, mentions, channel ids, broadcasts). -#}
  {%- set before_mentions = [] -%}
  {%- if var('clean_code') -%}
    {%- do before_mentions.append([", '(?s)```.*?(```|$)', ' ', 'g')", true]) -%}
    {%- do before_mentions.append([", '`[^`\\n]*`', ' ', 'g')", true]) -%}
  {%- endif -%}
  {%- if var('clean_links') -%}
    {%- do before_mentions.append([", '<(?:https?|ftp|mailto):[^>|]*\\|([^>]*)>', '\\1', 'g')", false]) -%}
    {%- do before_mentions.append([", '<(?:https?|ftp|mailto):[^>]*>', ' ', 'g')", false]) -%}
    {%- do before_mentions.append([", '(?:https?|ftp)://[^\\s<>]+', ' ', 'g')", true]) -%}
  {%- endif -%}
  {%- if var('mask_pii') -%}
    {%- do before_mentions.append([", '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}', '[email]', 'g')", true]) -%}
    {#- international (+49 30 901820), (212) 555-0199, 555-867-5309 / 415.555.0134; not lists of numbers ("500 502 503") -#}
    {%- do before_mentions.append([", '(?:\\+\\d{1,3}(?:[\\s.-]?\\(?\\d{2,6}\\)?){2,4}|\\(\\d{2,4}\\)\\s?\\d{3,4}[\\s.-]\\d{3,4}\\b|\\b\\d{3}[.-]\\d{3,4}[.-]\\d{4}\\b)', '[phone]', 'g')", true]) -%}
  {%- endif -%}
  {#- user mentions: <@U1|name> -> <@U1> (then each id -> @name, or removed: below) -#}
  {%- do before_mentions.append([", '<@([UW][A-Z0-9]+)\\|[^>]*>', '<@\\1>', 'g')", false]) -%}

  {%- set after_mentions = [[", '<@[^>]*>', ' ', 'g')", false]] -%}
  {%- if var('clean_channel_ids') -%}
    {%- do after_mentions.append([", '<#[A-Z0-9]+\\|([^>]+)>', '#\\1', 'g')", false]) -%}
    {%- do after_mentions.append([", '<#[^>]*>', ' ', 'g')", false]) -%}
  {%- endif -%}
  {#- broadcast and group mentions -#}
  {%- do after_mentions.append([", '<!subteam\\^[A-Z0-9]+\\|(@?)([^>]*)>', '@\\2', 'g')", false]) -%}
  {%- do after_mentions.append([", '<!(here|channel|everyone)(?:\\|[^>]*)?>', '@\\1', 'g')", false]) -%}
  {%- do after_mentions.append([", '<![^>]*>', ' ', 'g')", false]) -%}
  {%- if var('clean_emoji') -%}
    {#- :shortcodes: (and runs of them, :+1::skin-tone-2:), not words glued by colons (user:alice:admin) -#}
    {%- do after_mentions.append([", '(^|[^A-Za-z0-9])(?::[a-z+][a-z0-9_+''-]*:)+', '\\1 ', 'g')", true]) -%}
    {#- pictographs removed, except a ZWJ sequence (👩‍💻, 🏳️‍🌈: emoji joined by U+200D), kept whole: one emoji
        that names a person, a role or a flag. The first alternative captures a sequence and puts it back. -#}
    {%- do after_mentions.append([", '(\\p{So}[\\x{fe0f}\\x{1f3fb}-\\x{1f3ff}]*(?:\\x{200d}\\p{So}[\\x{fe0f}\\x{1f3fb}-\\x{1f3ff}]*)+)|[\\p{So}\\x{200d}\\x{fe0f}\\x{20e3}\\x{1f3fb}-\\x{1f3ff}]', '\\1', 'g')", true]) -%}
  {%- endif -%}

  {%- set t = namespace(sql=raw) -%}
  {%- set n = namespace(sql=raw) -%}
  {%- for arguments, without_lt in before_mentions -%}
    {%- set t.sql = "regexp_replace(" ~ t.sql ~ arguments -%}
    {%- if without_lt %}{% set n.sql = "regexp_replace(" ~ n.sql ~ arguments %}{% endif -%}
  {%- endfor -%}
  {%- if var('mention_style') == 'name' -%}
    {%- set t.sql = "list_transform([" ~ t.sql ~ "], lambda s: list_reduce(list_distinct(regexp_extract_all(s, '<@([UW][A-Z0-9]+)>', 1)), "
                ~ "lambda acc, uid: replace(acc, '<@' || uid || '>', '@' || coalesce(" ~ user_names ~ "[uid], 'someone')), s))[1]" -%}
  {%- endif -%}
  {%- for arguments, without_lt in after_mentions -%}
    {%- set t.sql = "regexp_replace(" ~ t.sql ~ arguments -%}
    {%- if without_lt %}{% set n.sql = "regexp_replace(" ~ n.sql ~ arguments %}{% endif -%}
  {%- endfor -%}

  {%- for s in [t, n] -%}
    {#- HTML entities: Slack escapes only these three (&amp; last) -#}
    {%- set s.sql = "replace(replace(replace(" ~ s.sql ~ ", '&lt;', '<'), '&gt;', '>'), '&amp;', '&')" -%}
    {#- control characters (NUL included) and bidi marks -#}
    {%- set s.sql = "regexp_replace(" ~ s.sql ~ ", '[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\\x{200e}\\x{200f}\\x{202a}-\\x{202e}\\x{2066}-\\x{2069}]', '', 'g')" -%}
  {%- endfor -%}

  {{ return([raw, t.sql, n.sql]) }}
{% endmacro %}

{% macro duckdb__clean_slack_text(text, user_names) %}
  {%- set raw, t, n = duckdb__clean_slack_text_chains(text, user_names) -%}
  case
    when contains({{ raw }}, '<') then {{ duckdb__clean_slack_text_tail(t) }}
    when regexp_matches({{ raw }}, '[&`@:0-9\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|[^\x00-\x7f]')
      then {{ duckdb__clean_slack_text_tail(n) }}
    else {{ duckdb__clean_slack_text_tail(raw) }}
  end
{% endmacro %}

{#- Every rule on every text, without the shortcuts above (which skip, for the texts they choose,
    only rules that cannot match them: the same result). For one message at a time (the live path,
    python_steps/beep/rules/messages.py), where DuckDB prepares each query's expression anew and the
    three branches cost more than they save; tests/python/test_rules_parity.py compares the two on
    every message of the sample and of a generated workspace. -#}
{% macro duckdb__clean_slack_text_every_rule(text, user_names) %}
  {%- set raw, t, n = duckdb__clean_slack_text_chains(text, user_names) -%}
  {{ duckdb__clean_slack_text_tail(t) }}
{% endmacro %}

{#- The rules every text goes through last: the prompt suffix removed, white space tidied. -#}
{% macro duckdb__clean_slack_text_tail(t) %}
  {#- the prompt suffix's text must never occur inside a prompt -#}
  {%- set suffix_core = var('prompt_suffix') | trim -%}
  {%- if suffix_core -%}
    {%- set t = "replace(" ~ t ~ ", '" ~ suffix_core | replace("'", "''") ~ "', ' ')" -%}
  {%- endif -%}

  {#- white space: runs of blanks -> one space, 3+ newlines -> a blank line, trimmed. The runs
      matched are only those that change (two or more blanks, or a tab or CR among them): a pattern
      matching every single space rewrote every text and cost more than all the markup rules. The
      trim is RE2's \\s (tab, newline, form feed, CR, space) at both ends, without a regular expression. -#}
  {%- set t = "regexp_replace(" ~ t ~ ", '[ \\t\\r]*[\\t\\r][ \\t\\r]*| {2,}', ' ', 'g')" -%}
  {%- set t = "regexp_replace(" ~ t ~ ", ' ?\\n ?', chr(10), 'g')" -%}
  {%- set t = "regexp_replace(" ~ t ~ ", '\\n{3,}', chr(10) || chr(10), 'g')" -%}
  {{- return("trim(" ~ t ~ ", chr(9) || chr(10) || chr(12) || chr(13) || ' ')") -}}
{% endmacro %}
