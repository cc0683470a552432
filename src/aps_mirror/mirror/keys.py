"""S3 keys for mirrored files: safe for S3 and for a later restore onto Windows or macOS.

Rules (each segment: hub name, project name, folder names, file name):
1. Unicode is normalised to NFC, so a name typed on macOS (NFD) and on Windows maps to one key.
2. Characters Windows forbids (< > : " | ? * / \\) become their full-width look-alikes
   (＜ ＞ ： ＂ ｜ ？ ＊ ／ ＼), as rclone does: readable, and distinct from each other.
3. Control characters U+0000-U+001F and U+007F become their visible "control picture"
   (U+2400-U+241F, U+2421).
4. A leading or trailing space becomes ␠ and a trailing dot becomes ．: Windows drops them.
   The names "." and ".." become "．" and "．．", so no key can climb out of its folder.
5. Windows' reserved device names (CON, PRN, AUX, NUL, COM1-9, LPT1-9, with or without an
   extension, any case) get a "_" after the stem: "con.txt" -> "con_.txt".
6. A segment longer than 255 UTF-8 bytes (macOS and most Linux file systems' limit) is cut
   and given "~" plus 8 hex digits of the SHA-1 of the full name, keeping the extension.
7. An empty name becomes "_".
8. A whole key over S3's 1,024 bytes folds its folder path into a hash (see `object_key`).
Names that still collide in one folder (differing only by case or normalisation) are told
apart by the caller with `disambiguate`.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_SEGMENT_BYTES = 255
MAX_KEY_BYTES = 1024  # S3's limit for a whole key

_FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in '<>:"|?*/\\'}
_CONTROL = {chr(i): chr(0x2400 + i) for i in range(0x20)} | {"\x7f": "\u2421"}
_TRANSLATE = str.maketrans(_FULLWIDTH | _CONTROL)
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$", re.IGNORECASE)
_SPACE_SYMBOL = "\u2420"  # ␠
_FULLWIDTH_DOT = "\uff0e"  # ．


def safe_segment(name: str) -> str:
    """One path segment made safe by the rules in this module's docstring."""
    text = unicodedata.normalize("NFC", name or "").translate(_TRANSLATE)
    if text in (".", ".."):
        return _FULLWIDTH_DOT * len(text)
    if not text:
        return "_"
    if text[0] == " ":
        text = _SPACE_SYMBOL + text[1:]
    if text[-1] == " ":
        text = text[:-1] + _SPACE_SYMBOL
    elif text[-1] == ".":
        text = text[:-1] + _FULLWIDTH_DOT
    match = _RESERVED.match(text)
    if match:
        text = match.group(1) + "_" + (match.group(2) or "")
    if len(text.encode("utf-8")) > MAX_SEGMENT_BYTES:
        text = _shorten(text, name)
    return text


def _shorten(text: str, original: str) -> str:
    stem, dot, ext = text.rpartition(".")
    if not dot or len(ext.encode("utf-8")) > 16:  # no real extension: cut the whole name
        stem, ext = text, ""
    suffix = "~" + hashlib.sha1(original.encode("utf-8")).hexdigest()[:8] + ("." + ext if ext else "")
    budget = MAX_SEGMENT_BYTES - len(suffix.encode("utf-8"))
    return _truncate_utf8(stem, budget) + suffix


def _truncate_utf8(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8")[:max_bytes]
    return data.decode("utf-8", errors="ignore")  # never split a character in two


def disambiguate(segment: str, unique_id: str) -> str:
    """A variant of `segment` made distinct by a short hash of a stable id (before the extension)."""
    tag = "~" + hashlib.sha1(unique_id.encode("utf-8")).hexdigest()[:8]
    stem, dot, ext = segment.rpartition(".")
    if not dot or not stem:
        stem, ext = segment, ""
    ext_part = "." + ext if ext else ""
    budget = MAX_SEGMENT_BYTES - len((tag + ext_part).encode("utf-8"))
    return _truncate_utf8(stem, budget) + tag + ext_part


def collision_key(segment: str) -> str:
    """Two segments with the same collision key cannot live in one folder on Windows/macOS."""
    return unicodedata.normalize("NFC", segment).casefold()


def object_key(prefix: str, hub: str, project: str, folders: tuple[str, ...], name: str) -> str:
    """The S3 key of a file, from already-safe segments.

    A key over S3's 1,024 bytes keeps prefix, hub, project and file name and folds the
    folder path into `_long_paths/<16 hex digits of its SHA-1>`.
    """
    root = [p for p in prefix.strip("/").split("/") if p] + [hub, project]
    key = "/".join([*root, *folders, name])
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        folded = hashlib.sha1("/".join(folders).encode("utf-8")).hexdigest()[:16]
        key = "/".join([*root, "_long_paths", folded, name])
    return key


def assign_segments(entries: list[tuple[str, str]]) -> dict[str, str]:
    """Safe, distinct segments for the (id, name) pairs of one folder.

    When names collide after rule 1-7 or by case, the entry with the smallest id keeps the
    plain name and the others get `disambiguate`d, so the outcome is stable between runs.
    """
    taken: dict[str, str] = {}
    result: dict[str, str] = {}
    for entry_id, name in sorted(entries):
        segment = safe_segment(name)
        if collision_key(segment) in taken:
            segment = disambiguate(segment, entry_id)
        taken[collision_key(segment)] = entry_id
        result[entry_id] = segment
    return result
