"""The seed notebook's way of building the dataset, for bench/bench_dataset.py to measure beside Beep:
pandas, a Python loop over the conversations, and sklearn's LabelEncoder. The same method as
bench/seed_method.sql (threads + 10-minute gaps, the previous 5 messages, light cleaning):

    .venv/bin/python bench/pandas_method.py EXPORT_DIR OUT.jsonl

Reads every day file with json.load into one DataFrame, keeps people's messages, cleans the text
with pandas' vectorised regexes, splits conversations (a thread is one; outside threads a gap over
10 minutes starts one), then walks each conversation in Python to build prompt/completion pairs,
encodes the responders with LabelEncoder and writes JSONL, as the notebook does. pandas and
scikit-learn are bench-only dependencies (the `bench` dependency group; `make install` does not
need them).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
from sklearn.preprocessing import LabelEncoder

SUFFIX = "\n\n###\n\n"
CONTEXT = 5
GAP = pd.Timedelta(minutes=10)
CLEAN = r"```.*?```|`[^`]*`|<[^>]*>|https?://\S+"


def read_export(export: Path) -> pd.DataFrame:
    """Every message of every day file, with its channel (the folder)."""
    rows: list[dict] = []
    files = sorted(export.glob("*/*.json"))
    for n, path in enumerate(files, 1):
        channel = path.parent.name
        for message in json.loads(path.read_text(encoding="utf-8")):
            rows.append({"channel": channel, "ts": message.get("ts"), "thread_ts": message.get("thread_ts"),
                         "user": message.get("user"), "subtype": message.get("subtype"), "text": message.get("text")})
        if n % 5000 == 0:
            print(f"  read {n:,} of {len(files):,} day files", flush=True)
    return pd.DataFrame(rows)


def conversations(df: pd.DataFrame) -> pd.DataFrame:
    """People's messages, cleaned, each with its conversation id, in time order."""
    df = df[df["subtype"].isna() & df["user"].notna() & (df["text"].fillna("") != "")].copy()
    df["at"] = pd.to_datetime(df["ts"].astype(float), unit="s")
    df["clean_text"] = df["text"].str.replace(CLEAN, " ", regex=True).str.strip()
    df = df.sort_values(["channel", "at", "ts"])
    in_thread = df["thread_ts"].notna()
    channel = df[~in_thread].copy()
    new_run = channel.groupby("channel")["at"].diff().isna() | (channel.groupby("channel")["at"].diff() > GAP)
    channel["conversation_id"] = channel["channel"] + ":run:" + new_run.groupby(channel["channel"]).cumsum().astype(str)
    thread = df[in_thread].copy()
    thread["conversation_id"] = thread["channel"] + ":thread:" + thread["thread_ts"]
    return pd.concat([channel, thread]).sort_values(["conversation_id", "at", "ts"])


def examples(df: pd.DataFrame) -> pd.DataFrame:
    """The notebook's loop: each message by someone other than the previous author is a target."""
    out: list[dict] = []
    for conversation_id, group in df.groupby("conversation_id", sort=False):
        users = group["user"].tolist()
        texts = group["clean_text"].tolist()
        stamps = group["ts"].tolist()
        for i in range(1, len(users)):
            if users[i] != users[i - 1]:
                out.append({"conversation_id": conversation_id, "target_ts": stamps[i], "responder": users[i],
                            "prompt": "\n\n".join(texts[max(0, i - CONTEXT):i]) + SUFFIX})
    result = pd.DataFrame(out)
    result["completion"] = " " + pd.Series(LabelEncoder().fit_transform(result["responder"])).astype(str)
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    export, out = Path(argv[0]), Path(argv[1])
    if not (export / "users.json").exists():
        print(f"{export} is not an unzipped Slack export (no users.json); pass the export folder.", file=sys.stderr)
        return 2
    started = time.perf_counter()
    raw = read_export(export)
    print(f"{time.perf_counter() - started:8.2f}s  read {len(raw):,} messages", flush=True)
    conv = conversations(raw)
    del raw
    print(f"{time.perf_counter() - started:8.2f}s  {len(conv):,} messages in conversations", flush=True)
    result = examples(conv)
    print(f"{time.perf_counter() - started:8.2f}s  {len(result):,} examples", flush=True)
    result[["prompt", "completion"]].to_json(out, orient="records", lines=True, force_ascii=False)
    print(f"{time.perf_counter() - started:8.2f}s  wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
