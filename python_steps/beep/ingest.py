"""`beep ingest`: accept a Slack export (.zip or folder), check it, and prepare the folder dbt reads.

A zip is extracted safely: entries with absolute paths or `..`, symlinks, archives whose
uncompressed size exceeds a cap, and members of 1 MiB or more that unpack to over 100 times their
compressed size (a zip bomb; the bundled sample's files compress at most 9:1) are refused with a
message naming the entry. An export without a single message is refused too: there is nothing to
learn from. Every file is then checked: malformed JSON is refused with the file, line and column and what to do; problems Beep can
handle (an empty day file, a lone UTF-16 surrogate DuckDB cannot read, a folder missing from
channels.json, a non-JSON file such as .DS_Store in a conversation folder, messages from a user id
missing from users.json, two copies of a message key (folder + ts) with different texts, …) are repaired or
counted, recorded in the `ingest_issues` table, and said on screen naming the files. The original export is
never modified: repairs go to a prepared copy under the work folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import unicodedata
import sys
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import cast

import duckdb

from beep.config import Paths
from beep.db import connect
from beep.rules.blocks import event_text

#: Refuse archives that would unpack to more than this many bytes (override with --max-size).
DEFAULT_MAX_UNCOMPRESSED_BYTES = 20 * 1024**3
#: Refuse a zip member that unpacks to more than this many times its compressed size (--max-ratio).
DEFAULT_MAX_COMPRESSION_RATIO = 100.0
#: Members smaller than this when unpacked are not held to the ratio: they cannot fill a disk, and a
#: few kilobytes of repetitive JSON can legitimately compress better than 100:1.
RATIO_EXEMPT_BYTES = 1024**2

_DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.json$")
_UNICODE_ESCAPE = re.compile(r"(\\+)u([0-9a-fA-F]{4})")
_LISTINGS = ("channels.json", "groups.json", "mpims.json", "dms.json")

#: Slack's own bot (tombstones, reminders, "message deleted"), in every real export's day files but
#: often not in users.json: a bot, never an unknown user.
SLACKBOT_ID = "USLACKBOT"


class IngestError(ValueError):
    """The export cannot be used as it is; the message names the file and says what to do."""


@dataclass
class Issue:
    """A problem found in one file that Beep handled (repaired or counted)."""

    file: str
    issue: str
    n: int = 1
    detail: str = ""


#: Bump when what the check of a day file finds changes: stored checks of another version are not reused.
CHECK_VERSION = 1


@dataclass(frozen=True)
class FileCheck:
    """What the check of one day file found, kept by its path and content hash (table
    ingest_file_checks) so that the next ingest does not parse an unchanged file again.

    Only files that needed no repair are kept: a repaired file is parsed (and repaired) every time."""

    rel: str
    content_hash: str
    n_messages: int
    user_counts: Mapping[str, int]
    #: (ts, hash of the text) of each message in file order: the duplicate check of its folder.
    keys: tuple[tuple[str, int], ...]


@dataclass
class IngestResult:
    """What `beep ingest` found and where the prepared export is."""

    ingest_id: str
    source_path: Path
    export_path: Path
    n_day_files: int = 0
    n_messages: int = 0
    n_bytes: int = 0
    issues: list[Issue] = field(default_factory=list)
    #: Day files whose stored check was reused (content unchanged since an earlier ingest): not parsed.
    n_day_files_unchanged: int = 0
    #: This ingest's checks of the day files that needed no repair (stored for the next ingest).
    file_checks: list[FileCheck] = field(default_factory=list)
    #: Conversation folders whose name is a listed conversation's in another Unicode normal form (NFD
    #: written by macOS, NFC in channels.json): folder -> the listing's spelling, which the prepared
    #: copy gives the folder (dbt joins day files to their channel by the folder's name).
    renamed_folders: dict[str, str] = field(default_factory=dict)

    def describe_reuse(self) -> str:
        """How many day files were parsed, and how many were known unchanged (one line)."""
        parsed = self.n_day_files - self.n_day_files_unchanged
        if not self.n_day_files_unchanged:
            return f"parsed all {self.n_day_files:,} day files"
        return (f"parsed {parsed:,} new or changed day file{'s' if parsed != 1 else ''} of {self.n_day_files:,} "
                f"(the others' content is unchanged since an earlier ingest: their stored checks were reused)")

    def issue_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for issue in self.issues:
            counts[issue.issue] = counts.get(issue.issue, 0) + issue.n
        return counts

    def issue_lines(self, max_files: int = 5) -> list[str]:
        """The handled problems as lines to print, each naming its file (at most ``max_files`` per
        kind of problem, then how many more: all of them are in table ingest_issues)."""
        if not self.issues:
            return []
        lines = [f"handled problems ({len(self.issues):,}; all in table ingest_issues):"]
        by_kind: dict[str, list[Issue]] = {}
        for issue in self.issues:
            by_kind.setdefault(issue.issue, []).append(issue)
        for kind in sorted(by_kind):
            for issue in by_kind[kind][:max_files]:
                lines.append(f"  {issue.file}: {kind}" + (f" ({issue.n:,})" if issue.n > 1 else "")
                             + (f" - {issue.detail}" if issue.detail else ""))
            if len(by_kind[kind]) > max_files:
                lines.append(f"  ... and {len(by_kind[kind]) - max_files:,} more {kind} files")
        return lines


ProgressCallback = Callable[[int, int], None]


def _say_on_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- zip

def _safe_member_path(info: zipfile.ZipInfo) -> PurePosixPath:
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or path.is_absolute():
        raise IngestError(
            f"Refusing the zip entry {info.filename!r}: it has an absolute path and would be written "
            "outside the extraction folder. Re-create the archive with relative paths (Slack's own "
            "exports never contain such entries)."
        )
    if any(part == ".." for part in path.parts):
        raise IngestError(
            f"Refusing the zip entry {info.filename!r}: its path climbs out of the extraction folder "
            "with '..' (a 'zip slip'). Re-create the archive without it; Slack's own exports never "
            "contain such entries."
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise IngestError(
            f"Refusing the zip entry {info.filename!r}: it is a symbolic link, which could point "
            "anywhere on this machine. Re-create the archive without links."
        )
    return path


def _ratio_refusal(zip_path: Path, info: zipfile.ZipInfo, unpacked: int, max_ratio: float) -> IngestError:
    ratio = unpacked / max(info.compress_size, 1)
    return IngestError(
        f"Refusing {zip_path}: the entry {info.filename!r} unpacks to {unpacked:,} bytes from "
        f"{info.compress_size:,} compressed ({ratio:,.0f}:1), over the limit of {max_ratio:g}:1 per member. "
        "That is how a zip bomb looks; Slack JSON compresses far less (the bundled sample: at most 9:1 per "
        "file). Re-create the archive, or raise --max-ratio only if you trust it."
    )


def extract_zip(
    zip_path: Path,
    dest: Path,
    *,
    max_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES,
    max_ratio: float = DEFAULT_MAX_COMPRESSION_RATIO,
    previous: Path | None = None,
) -> Path:
    """Extract ``zip_path`` into ``dest`` after checking every entry; return ``dest``.

    Refused: unsafe paths and links, a total unpacked size over ``max_bytes``, and any member of at
    least :data:`RATIO_EXEMPT_BYTES` unpacked that unpacks to more than ``max_ratio`` times its
    compressed size (checked on the headers first, then on the bytes actually written).
    ``previous``: an earlier extraction (default ``dest`` itself) whose files with the same path and
    bytes lend the new ones their modification times."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as err:
        raise IngestError(f"{zip_path} is not a readable zip archive ({err}). Download the export again.") from err
    with archive:
        infos = archive.infolist()
        members = [(info, _safe_member_path(info)) for info in infos]
        declared = sum(info.file_size for info in infos)
        if declared > max_bytes:
            raise IngestError(
                f"Refusing {zip_path}: it would unpack to {declared:,} bytes, over the cap of "
                f"{max_bytes:,}. If the export really is that large, raise the cap with --max-size."
            )
        for info in infos:
            if info.file_size >= RATIO_EXEMPT_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
                raise _ratio_refusal(zip_path, info, info.file_size, max_ratio)
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            written = 0
            for info, rel in members:
                target = tmp.joinpath(*rel.parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                member_written = 0
                with archive.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        member_written += len(chunk)
                        if member_written >= RATIO_EXEMPT_BYTES and member_written > max_ratio * max(info.compress_size, 1):
                            out.close()
                            shutil.rmtree(tmp, ignore_errors=True)
                            raise _ratio_refusal(zip_path, info, member_written, max_ratio)
                        if written > max_bytes:
                            shutil.rmtree(tmp, ignore_errors=True)
                            raise IngestError(
                                f"Refusing {zip_path}: the entry {info.filename!r} unpacks past the cap of "
                                f"{max_bytes:,} bytes (its header understates its size). Raise --max-size "
                                "only if you trust the archive."
                            )
                        out.write(chunk)
        except zipfile.BadZipFile as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise IngestError(
                f"Refusing {zip_path}: the entry {info.filename!r} does not unpack as its header says ({err}). "
                "Download the export again."
            ) from err
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _keep_times_of_unchanged_files(previous or dest, tmp)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    return dest


def _keep_times_of_unchanged_files(old: Path, new: Path) -> None:
    """Give each file of ``new`` whose bytes equal the same path's in ``old`` (the last zip extracted
    for this DuckDB file) that file's modification time: dbt's incremental staging tells changed day
    files by size and time (macros/slack_export_files.sql), so a day file a new zip carries unchanged
    is not parsed again."""
    if not old.is_dir():
        return
    for path in new.rglob("*"):
        before = old / path.relative_to(new)
        if path.is_file() and before.is_file():
            st = before.stat()
            if st.st_size == path.stat().st_size and before.read_bytes() == path.read_bytes():
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


# ---------------------------------------------------------------------------------- checking

def find_export_root(folder: Path) -> Path:
    """The folder holding users.json / channels.json: ``folder`` itself or its single subfolder."""
    if (folder / "channels.json").exists() or (folder / "users.json").exists():
        return folder
    subfolders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
    if len(subfolders) == 1:
        inner = subfolders[0]
        if (inner / "channels.json").exists() or (inner / "users.json").exists():
            return inner
    return folder


def _json_error_message(rel: str, err: json.JSONDecodeError) -> str:
    return (
        f"{rel}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}). "
        "A Slack day file is a JSON array of message objects. Re-export the workspace, fix the file, "
        "or move it out of the export folder (its messages will then be missing), and run again."
    )


def _load_json_array(raw: bytes, rel: str, issues: list[Issue]) -> tuple[list[object], str | None]:
    """Parse the bytes of a JSON array file; return (items, repaired text or None)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        text = raw.decode("utf-8", errors="replace")
        issues.append(Issue(rel, "invalid_utf8_repaired", 1, f"bytes at offset {err.start} replaced by U+FFFD"))
        repaired: str | None = text
    else:
        repaired = None
    if text.startswith("\ufeff"):
        text = text[1:]
        repaired = text
        issues.append(Issue(rel, "byte_order_mark_removed"))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise IngestError(_json_error_message(rel, err)) from err
    if not isinstance(data, list):
        raise IngestError(
            f"{rel}: expected a JSON array (a list of objects) but found a {type(data).__name__}. "
            "Check that this is a file of a Slack export; move it out of the export folder if not."
        )
    text, lone = repair_lone_surrogates(text)
    if lone:
        repaired = text
        issues.append(Issue(rel, "lone_surrogate_repaired", lone, "unpaired UTF-16 surrogate escapes replaced by U+FFFD"))
    return data, repaired


def repair_lone_surrogates(text: str) -> tuple[str, int]:
    """Replace JSON escapes of unpaired UTF-16 surrogates (which DuckDB refuses) by \\ufffd; return (text, count)."""
    if "\\ud" not in text and "\\uD" not in text:  # no copy of the text (lower() was a third of the check)
        return text, 0
    matches = [m for m in _UNICODE_ESCAPE.finditer(text) if len(m.group(1)) % 2 == 1]
    codes = [int(m.group(2), 16) for m in matches]
    lone: list[re.Match[str]] = []
    for i, (m, cp) in enumerate(zip(matches, codes)):
        if 0xD800 <= cp <= 0xDBFF:
            paired = i + 1 < len(matches) and matches[i + 1].start() == m.end() and 0xDC00 <= codes[i + 1] <= 0xDFFF
        elif 0xDC00 <= cp <= 0xDFFF:
            paired = i > 0 and matches[i - 1].end() == m.start() and 0xD800 <= codes[i - 1] <= 0xDBFF
        else:
            continue
        if not paired:
            lone.append(m)
    if not lone:
        return text, 0
    parts: list[str] = []
    last = 0
    for m in lone:
        start = m.end() - 6  # the "\\uXXXX" itself, after any escaped backslashes before it
        parts.append(text[last:start])
        parts.append("\\ufffd")
        last = m.end()
    parts.append(text[last:])
    return "".join(parts), len(lone)


def export_fingerprint(source: Path) -> str:
    """A hash of a zip or folder: its resolved path and every file's name, size and mtime."""
    return _ingest_id(source)


def _ingest_id(source: Path) -> str:
    digest = hashlib.sha256(str(source.resolve()).encode())
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for p in files:
        st = p.stat()
        digest.update(f"{p.relative_to(source) if p != source else p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _what_is_there(root: Path) -> str:
    """What a folder without users.json holds instead, for the refusal: nothing, or where a users.json
    lies deeper (an export nested in more folders than the one top folder Beep looks into)."""
    if not root.is_dir() or not any(root.iterdir()):
        return " (the folder is empty)"
    for depth in ("*/*/users.json", "*/*/*/users.json", "*/*/org_users.json", "*/*/*/org_users.json"):
        found = sorted(root.glob(depth))
        if found:
            return f" (one lies deeper: {found[0].parent.relative_to(root).as_posix()}/{found[0].name})"
    return ""


def _require_top_files(root: Path, label: str) -> None:
    """Refuse a folder without users.json (or org_users.json) and channels.json at its top."""
    if not (root / "users.json").exists() and not (root / "org_users.json").exists():
        raise IngestError(
            f"{label}: no users.json (nor org_users.json) at the top of the export{_what_is_there(root)}. Point "
            "Beep at the unzipped export folder (the one holding users.json, channels.json and a folder per "
            "channel), or re-export the workspace from Slack."
        )
    if not (root / "channels.json").exists():
        raise IngestError(
            f"{label}: no channels.json at the top of the export. Point Beep at the unzipped export "
            "folder, or re-export the workspace from Slack."
        )


def _read_listings(root: Path, issues: list[Issue], repairs: dict[str, str]) -> tuple[dict[str, str], set[str]]:
    """The conversations the listings name (their folder name -> their id: some exports name a private
    channel's or a DM's folder by its id, macros/listed_channel_folders.sql) and the user ids of
    users.json / org_users.json."""
    listed: dict[str, str] = {}
    user_ids: set[str] = set()
    seen: dict[str, str] = {}  # a listed conversation's name and id -> the listing that named it first
    for name in ("users.json", "org_users.json", *_LISTINGS):
        path = root / name
        if not path.exists():
            continue
        items, repaired = _load_json_array(path.read_bytes(), name, issues)
        if repaired is not None:
            repairs[name] = repaired
        if name in ("users.json", "org_users.json"):
            user_ids.update(str(item["id"]) for item in items if isinstance(item, dict) and item.get("id"))
        if name in _LISTINGS:
            for item in items:
                if isinstance(item, dict):
                    folder = str(item.get("name") or item.get("id") or "")
                    listed[folder] = str(item.get("id") or folder)
                    for key in dict.fromkeys(k for k in (folder, str(item.get("id") or "")) if k):
                        if key in seen:
                            raise IngestError(
                                f"{name}: the conversation {key!r} is listed again (first in {seen[key]}): dbt keeps one "
                                "row per channel. Remove one of the two entries (a channel made private can be in both "
                                "channels.json and groups.json) and run `beep ingest` again.")
                        seen[key] = name
    return listed, user_ids


def _check_day_file(root: Path, path: Path, result: IngestResult, repairs: dict[str, str], copies: _Copies,
                    user_ids: set[str], known: Mapping[str, FileCheck]) -> None:
    """Count one day file and note its problems; refuse it when its array holds non-message elements.

    A file whose path and content hash match a check in ``known`` is not parsed again: its stored
    counts, users and message keys stand for it (the checks that depend on other files, duplicates
    in its folder and users missing from users.json, are made again from them)."""
    issues = result.issues
    rel = path.relative_to(root).as_posix()
    copies.enter(path.parent, rel)
    raw = path.read_bytes()
    result.n_bytes += len(raw)
    result.n_day_files += 1
    if not _DAY_FILE.match(path.name):
        issues.append(Issue(rel, "unexpected_file_name", 1, "not <YYYY-MM-DD>.json; read as a day file"))
    if not raw:
        issues.append(Issue(rel, "empty_file", 1, "zero bytes: no messages"))
        return
    content_hash = hashlib.blake2b(raw, digest_size=16).hexdigest()
    check = known.get(rel)
    if check is not None and check.content_hash == content_hash:
        result.n_day_files_unchanged += 1
        result.file_checks.append(check)
    else:
        check = _parse_day_file(raw, rel, content_hash, issues, repairs)
        if rel not in repairs:
            result.file_checks.append(check)
    result.n_messages += check.n_messages
    duplicate = copies.check(check.keys)
    if duplicate:
        issues.append(duplicate)
    unknown = {user: n for user, n in check.user_counts.items() if user not in user_ids and user != SLACKBOT_ID}
    if unknown:
        ids = sorted(unknown)
        issues.append(Issue(rel, "unknown_user", sum(unknown.values()),
                            f"user ids not in users.json: {', '.join(ids[:5])}{' …' if len(ids) > 5 else ''}; "
                            "their label is named by the id"))


def _parse_day_file(raw: bytes, rel: str, content_hash: str, issues: list[Issue], repairs: dict[str, str]) -> FileCheck:
    items, repaired = _load_json_array(raw, rel, issues)
    if repaired is not None:
        repairs[rel] = repaired
    not_objects = sum(1 for item in items if not isinstance(item, dict))
    if not_objects:
        raise IngestError(
            f"{rel}: {not_objects} element(s) of the array are not message objects. "
            "Fix or remove the file and run again."
        )
    messages = cast("list[dict]", items)  # every element is a dict (checked above)
    filled = 0
    for message in messages:  # empty text, words in the blocks: the text rebuilt from them (beep.rules.blocks)
        if not message.get("text") and message.get("blocks"):
            text = event_text(message)
            if text:
                message["text"] = text
                filled += 1
    if filled:
        repairs[rel] = json.dumps(messages, ensure_ascii=False)
        issues.append(Issue(rel, "text_from_blocks", filled,
                            "messages with an empty text whose blocks hold words: the text rebuilt from the blocks "
                            "in the prepared copy (else they would be excluded as empty_text)"))
    users = Counter(str(item["user"]) for item in messages if item.get("user"))
    return FileCheck(rel, content_hash, len(messages), dict(users), tuple(message_keys(messages)))


def message_keys(items: Iterable[dict]) -> Iterable[tuple[str, int]]:
    """(ts, a 40-bit hash of the text) of each message with a ``ts``, in order: what two copies of a
    message key are compared by. The hash is stable across processes (stored checks are compared
    with new files)."""
    for item in items:
        ts = item.get("ts")
        if ts is None:
            continue
        text = item.get("text")
        body = text if isinstance(text, str) else json.dumps(text, sort_keys=True, default=str)
        encoded = body.encode("utf-8", "surrogatepass")
        yield (ts if isinstance(ts, str) else json.dumps(ts)), zlib.crc32(encoded) << 8 | len(encoded) & 0xFF


def _note_non_json_files(root: Path, day_files: list[Path], issues: list[Issue]) -> None:
    folders = {p.parent for p in day_files} | {
        d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name != "__MACOSX"}
    for folder in sorted(folders):
        for other in sorted(folder.iterdir()):
            if other.is_file() and other.suffix.lower() != ".json":
                issues.append(Issue(other.relative_to(root).as_posix(), "non_json_file", 1,
                                    "not a .json file inside a conversation folder: not read"))


def _note_unlisted_channels(day_files: list[Path], listed: dict[str, str], issues: list[Issue],
                            renamed: Mapping[str, str]) -> None:
    unlisted = sorted({p.parent.name for p in day_files} - set(listed) - set(listed.values()) - set(renamed))
    for folder in unlisted:
        n = sum(1 for p in day_files if p.parent.name == folder)
        issues.append(Issue(folder + "/", "unlisted_channel", n, f"folder not in channels/groups/mpims/dms.json (by name or "
                            f"id); kept, named after the folder ({n} day file{'s' if n != 1 else ''})"))


def _note_nested_files(root: Path, day_files: list[Path], listed: dict[str, str], issues: list[Issue],
                       renamed: Mapping[str, str]) -> None:
    """.json files deeper than <folder>/<day>.json are not read (nor by dbt): count them by top folder,
    and name the listed conversations without a folder of their own (their messages may be among them)."""
    read = set(day_files)
    nested: dict[str, list[str]] = {}
    for path in root.rglob("*.json"):
        parts = path.relative_to(root).parts
        if len(parts) <= 2 or path in read or any(p.startswith((".", "__MACOSX")) for p in parts):
            continue
        nested.setdefault(parts[0], []).append(path.relative_to(root).as_posix())
    for top, files in sorted(nested.items()):
        issues.append(Issue(top + "/", "nested_json_files", len(files),
                            f".json files below a conversation folder (e.g. {sorted(files)[0]}): not read. A Slack "
                            "export keeps each day file directly in its conversation's folder (<channel>/<YYYY-MM-DD>.json); "
                            "move them up, or point Beep at the folder that holds them with users.json and channels.json"))
    if nested:
        folders = {renamed.get(p.parent.name, p.parent.name) for p in day_files}
        missing = sorted(n for n, cid in listed.items() if n and n not in folders and cid not in folders)
        if missing:
            issues.append(Issue("channels.json", "listed_without_folder", len(missing),
                                f"listed conversations without a folder at the top of the export: {', '.join(missing[:10])}"
                                f"{' …' if len(missing) > 10 else ''} (their day files may be among the nested .json files)"))


def check_export(root: Path, on_progress: ProgressCallback | None = None, *,
                 name: str | None = None, known: Mapping[str, FileCheck] | None = None) -> tuple[IngestResult, dict[str, str]]:
    """Check every file of the export folder ``root``; return the result and the repaired texts by path.
    ``name``: what a refusal calls the export (the zip the user gave, not the folder it was extracted to).
    ``known``: stored checks of day files by path (:func:`load_file_checks`); a file whose content is
    unchanged is not parsed again, and the result is the same as if it had been."""
    result = IngestResult(ingest_id="", source_path=root, export_path=root)
    repairs: dict[str, str] = {}
    _require_top_files(root, name or str(root))
    listed, user_ids = _read_listings(root, result.issues, repairs)
    day_files = sorted(p for p in root.glob("*/*.json"))
    total = len(day_files)
    copies = _Copies()
    for i, path in enumerate(day_files, 1):
        _check_day_file(root, path, result, repairs, copies, user_ids, known or {})
        if on_progress:
            on_progress(i, total)
    _note_non_json_files(root, day_files, result.issues)
    result.renamed_folders = _folder_spellings(day_files, listed, result.issues)
    _note_unlisted_channels(day_files, listed, result.issues, result.renamed_folders)
    _note_nested_files(root, day_files, listed, result.issues, result.renamed_folders)
    return result, repairs


def _folder_spellings(day_files: list[Path], listed: dict[str, str], issues: list[Issue]) -> dict[str, str]:
    """Folders whose name is not listed as written but is in Unicode normal form C: the listing's spelling
    of that name, by folder (a zip made on macOS names ``café`` with ``e`` + U+0301, channels.json with é)."""
    by_nfc: dict[str, str] = {}
    for name in [*listed, *listed.values()]:
        by_nfc.setdefault(unicodedata.normalize("NFC", name), name)
    out: dict[str, str] = {}
    for folder in sorted({p.parent.name for p in day_files}):
        if folder in listed or folder in listed.values():
            continue
        spelled = by_nfc.get(unicodedata.normalize("NFC", folder))
        if spelled is not None and spelled != folder and not any(p.parent.name == spelled for p in day_files):
            out[folder] = spelled
            n = sum(1 for p in day_files if p.parent.name == folder)
            issues.append(Issue(folder + "/", "folder_name_normalized", n,
                                f"the listed conversation {spelled!r} in another Unicode form (as macOS writes names): "
                                "read as that conversation; the prepared copy names the folder as the listing does"))
    return out


class _Copies:
    """Messages of one conversation folder sharing a key (the folder and ``ts``, dbt's message key)
    with *different* texts: dbt keeps one copy and excludes the others as ``duplicate``; this names
    them (identical copies, e.g. a re-export, are left alone). Day files come folder by folder, so
    only the current folder's keys are held: one int per message."""

    _HASH_BITS = 40

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.files: list[str] = []
        self.seen: dict[str, int] = {}  # ts -> (hash of its first copy's text << 24) | that copy's file index

    def enter(self, folder: Path, rel: str) -> None:
        if folder != self.folder:
            self.folder, self.files, self.seen = folder, [], {}
        self.files.append(rel)

    def check(self, keys: Iterable[tuple[str, int]]) -> Issue | None:
        """Note the messages of the current file (:func:`message_keys`) whose key an earlier copy with
        another text holds."""
        index = min(len(self.files) - 1, (1 << 24) - 1)
        rel = self.files[-1]
        found: list[tuple[str, str]] = []  # (ts, file of the first copy)
        for key, text_hash in keys:
            mark = (text_hash & ((1 << self._HASH_BITS) - 1)) << 24 | index
            first = self.seen.setdefault(key, mark)
            if first >> 24 != mark >> 24:
                found.append((key, self.files[first & ((1 << 24) - 1)]))
        if not found:
            return None
        shown = ", ".join(f"{ts} (also in {other})" if other != rel else ts for ts, other in found[:5])
        return Issue(rel, "duplicate_ts_different_text", len(found),
                     f"ts {shown}{' …' if len(found) > 5 else ''}: same folder and ts, different text; one copy is "
                     "kept (the first by file, client_msg_id, text), the others are excluded as duplicate")


def _apply(root: Path, repairs: Mapping[str, str], renamed: Mapping[str, str]) -> None:
    """Write the repaired day files, then give the renamed folders the listing's spelling."""
    for rel, text in repairs.items():
        (root / rel).write_text(text, encoding="utf-8")
    for folder, spelled in renamed.items():
        (root / folder).rename(root / spelled)


def _write_prepared_copy(root: Path, dest: Path, repairs: dict[str, str], renamed: Mapping[str, str]) -> Path:
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(root, tmp)
    _apply(tmp, repairs, renamed)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def ingest(
    paths: Paths,
    source: Path,
    *,
    max_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES,
    max_ratio: float = DEFAULT_MAX_COMPRESSION_RATIO,
    on_progress: ProgressCallback | None = None,
    say: Callable[[str], None] | None = None,
) -> IngestResult:
    """Check (and extract or repair as needed) the export at ``source``; record it in DuckDB.

    The handled problems are said (``say``, by default printed on stderr), each naming its file
    (:meth:`IngestResult.issue_lines`), so none is only in table ingest_issues.
    A refusal is recorded too (pipeline_steps, step 'ingest_refused'): until an export is ingested or
    built again, `beep build`, `beep run` and plain dbt refuse to build anything in its place."""
    try:
        result = _ingest(paths, source, max_bytes=max_bytes, max_ratio=max_ratio, on_progress=on_progress)
    except IngestError as err:
        _record_refusal(paths, Path(source).expanduser(), err)
        raise
    for line in result.issue_lines():
        (say or _say_on_stderr)(line)
    return result


def _ingest(
    paths: Paths,
    source: Path,
    *,
    max_bytes: int,
    max_ratio: float,
    on_progress: ProgressCallback | None,
) -> IngestResult:
    source = Path(source).expanduser()
    if not source.exists():
        raise IngestError(f"{source} does not exist. Give the path of the export's .zip or of its unzipped folder.")
    ingest_id = _ingest_id(source)
    prepared = paths.exports_dir / f"{source.stem}-{ingest_id[:8]}"
    incoming: Path | None = None
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise IngestError(f"{source} is neither a folder nor a zip archive. Give the export's .zip or its unzipped folder.")
        # every zip of this DuckDB file is unzipped into one folder, so that tomorrow's zip of the same
        # workspace is, to dbt's incremental models, today's folder with a new day in it (a folder of
        # its own per zip made every new zip a new export, rebuilt in full). It is unpacked beside it
        # first and takes the folder's place only once checked: a refused zip leaves the last one.
        prepared = paths.exports_dir / f"unzipped-{paths.db_key}"
        incoming = prepared.with_name(prepared.name + ".incoming")
        root = find_export_root(extract_zip(source, incoming, max_bytes=max_bytes, max_ratio=max_ratio,
                                            previous=prepared))
    else:
        root = find_export_root(source)
    try:
        result, repairs = check_export(root, on_progress, name=str(source) if source.is_file() else None,
                                       known=load_file_checks(paths))
        if result.n_messages == 0:
            raise IngestError(
                f"{source}: the export holds no messages ({result.n_day_files} day files, none with a message "
                "object), so there is nothing to build a dataset from. Export the workspace again with its "
                "message history, or point Beep at the right folder."
            )
    except IngestError:
        if incoming is not None:  # nothing of a refused zip is kept
            shutil.rmtree(incoming, ignore_errors=True)
        raise
    if incoming is not None:
        inner = root.relative_to(incoming)
        shutil.rmtree(prepared, ignore_errors=True)
        incoming.rename(prepared)
        root = prepared / inner
    if repairs or result.renamed_folders:
        if source.is_file():
            _apply(root, repairs, result.renamed_folders)
        else:
            root = _write_prepared_copy(root, prepared, repairs, result.renamed_folders)
    result.ingest_id = ingest_id
    result.source_path = source.resolve()
    result.export_path = root.resolve()
    _record(paths, result)
    return result


def _record(paths: Paths, result: IngestResult) -> None:
    with connect(paths.duckdb) as con:
        con.execute("begin transaction")
        con.execute("delete from ingest_issues where ingest_id = ?", [result.ingest_id])
        con.execute("delete from ingests where ingest_id = ?", [result.ingest_id])
        con.execute(
            "insert into ingests (ingest_id, source_path, export_path, n_day_files, n_messages, n_bytes, n_issues) values (?, ?, ?, ?, ?, ?, ?)",
            [result.ingest_id, str(result.source_path), str(result.export_path), result.n_day_files,
             result.n_messages, result.n_bytes, len(result.issues)],
        )
        if result.issues:
            con.executemany(
                "insert into ingest_issues (ingest_id, file, issue, n, detail) values (?, ?, ?, ?, ?)",
                [[result.ingest_id, i.file, i.issue, i.n, i.detail] for i in result.issues],
            )
        _store_file_checks(con, result.file_checks)
        con.execute("commit")


def load_file_checks(paths: Paths) -> dict[str, FileCheck]:
    """The stored day-file checks of this DuckDB file (this :data:`CHECK_VERSION`), by path."""
    if not paths.duckdb.exists():
        return {}
    with connect(paths.duckdb, read_only=True) as con:
        if not con.execute("select 1 from duckdb_tables() where table_name = 'ingest_file_checks'").fetchone():
            return {}  # a DuckDB file that a read-only connection could not migrate
        rows = con.execute("select rel, content_hash, n_messages, user_counts, message_keys from ingest_file_checks "
                           "where check_version = ?", [CHECK_VERSION]).fetchall()
    return {rel: FileCheck(rel, content_hash, n, json.loads(users), tuple((k, h) for k, h in json.loads(keys)))
            for rel, content_hash, n, users, keys in rows}


def _store_file_checks(con: duckdb.DuckDBPyConnection, checks: list[FileCheck]) -> None:
    """Keep this ingest's checks: a path's row is replaced when its content changed; rows of paths this
    export lacks stay (another export of the same DuckDB file may have them)."""
    con.execute("delete from ingest_file_checks where check_version <> ?", [CHECK_VERSION])
    stored = dict(con.execute("select rel, content_hash from ingest_file_checks").fetchall())
    fresh = [c for c in checks if stored.get(c.rel) != c.content_hash]
    if not fresh:
        return
    con.execute("delete from ingest_file_checks where rel in (select unnest(?))", [[c.rel for c in fresh]])
    con.execute(
        "insert into ingest_file_checks (rel, content_hash, check_version, n_messages, user_counts, message_keys) "
        "select unnest(?), unnest(?), ?, unnest(?), unnest(?), unnest(?)",
        [[c.rel for c in fresh], [c.content_hash for c in fresh], CHECK_VERSION, [c.n_messages for c in fresh],
         [json.dumps(c.user_counts) for c in fresh], [json.dumps(c.keys) for c in fresh]],
    )


def _record_refusal(paths: Paths, source: Path, err: IngestError) -> None:
    try:
        with connect(paths.duckdb) as con:
            con.execute(
                "insert or replace into pipeline_steps (step, fingerprint, result, finished_at) "
                "values ('ingest_refused', ?, ?, current_timestamp)",
                [hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16],
                 json.dumps({"source_path": str(source.resolve()), "error": str(err)})],
            )
    except Exception:  # noqa: BLE001 — the refusal itself is what the user must see
        pass


@dataclass(frozen=True)
class LastExport:
    """What this DuckDB file last did with an export: ingested it, built it, or refused it."""

    kind: str  # ingest | build | refused
    export_path: Path | None  # the folder dbt reads (None when refused)
    source_path: Path  # what the user gave (the zip or folder); for a build, the folder itself
    error: str = ""


def last_export(paths: Paths) -> LastExport | None:
    """The most recent of: a successful ingest, a build, a refused ingest; None on a fresh DB.

    The bundled sample is the default only when this is None: a DuckDB file that has seen the
    user's own export never silently switches to the sample."""
    if not paths.duckdb.exists():
        return None
    with connect(paths.duckdb) as con:
        row = con.execute(
            """
            select kind, export_path, source_path, error from (
                select 'ingest' as kind, export_path, source_path, null as error, ingested_at as event_at from ingests
                union all
                select 'build', result ->> '$.export_path', result ->> '$.export_path', null, finished_at
                from pipeline_steps where step = 'build'
                union all
                select 'refused', null, result ->> '$.source_path', result ->> '$.error', finished_at
                from pipeline_steps where step = 'ingest_refused'
            ) order by event_at desc, (kind = 'build') desc limit 1
            """
        ).fetchone()
    if not row:
        return None
    kind, export_path, source_path, error = row
    return LastExport(kind, Path(export_path) if export_path else None, Path(source_path), error or "")


def latest_export_path(paths: Paths) -> Path | None:
    """The prepared folder of the most recent ingest recorded in the DuckDB file, if any."""
    if not paths.duckdb.exists():
        return None
    with connect(paths.duckdb) as con:
        row = con.execute("select export_path from ingests order by ingested_at desc limit 1").fetchone()
    return Path(row[0]) if row else None
