{#-
  A number for a channel folder that depends only on its name: the first 40 bits of the name's MD5.
  int_conversation_links numbers a message seq = channel number × 2^23 + its place in its channel
  (by time), so that a channel's numbers stay the same when other channels change: an incremental
  build recomputes only the channels a new day touches and its numbers equal a build from scratch.
  Both fit a BIGINT (40 + 23 bits); two folders with one number (odds about n² / 2^41 for n
  folders: 5e-7 for 1,000) or a channel with 2^23 (8.4 million) usable messages would give two
  messages one seq, which the `unique` test on int_conversation_links.seq reports. The same digits
  on every adapter (tests/python/test_spark_build.py compares the tables).
-#}
{% macro channel_number(folder) %}
  {{ return(adapter.dispatch('channel_number', 'beep')(folder)) }}
{% endmacro %}

{% macro default__channel_number(folder) %}
  cast(('0x' || substr(md5({{ folder }}), 1, 10)) as bigint)
{% endmacro %}

{% macro spark__channel_number(folder) %}
  cast(conv(substr(md5({{ folder }}), 1, 10), 16, 10) as bigint)
{% endmacro %}

{#- How many positions a channel has in seq: 2^23. -#}
{% macro channel_positions() %}{{ return(8388608) }}{% endmacro %}
