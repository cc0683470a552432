"""The sync options, declared once: CLI flags, DAG params and `MirrorConfig` all come from `SYNC_OPTIONS`.

Every entry point validates through the same parsers, so a bad value is refused the same way
(a one-line `ConfigError` naming the option, the value and what is accepted) wherever it
enters. Adding an option is one `SyncOption` here plus its `MirrorConfig` field.

No Airflow here (`dag_params()` returns plain keyword arguments for `Param`), and the engine is
imported only by `mirror_config()`, so the DAG file stays cheap to parse.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from aps_mirror.errors import ConfigError
from aps_mirror.mirror.keys import META_DIR
from aps_mirror.mirror.protection import (CHECKSUM_ALGORITHMS, LOCK_MODES, MAX_LOCK_DAYS, SSE_MODES,
                                          STORAGE_CLASSES)

if TYPE_CHECKING:
    from aps_mirror.mirror.engine import MirrorConfig

MAX_WORKERS = 64
MAX_PREFIX_CHARS = 512
RESERVED_SEGMENT = META_DIR  # the mirror's own metadata lives in {prefix}/_aps_mirror/
DELETE_POLICIES = ("keep", "trash", "delete")  # DeletePolicy's values (a test keeps them equal)
VERSIONS = ("tip", "all")
SOURCES = ("docs", "vault")  # the sources a mirror can read (a test keeps them equal to the engine's)
_MIB = 1 << 20
_SIZE_UNITS = {"K": 1 << 10, "M": _MIB, "G": 1 << 30, "T": 1 << 40}

# A parser turns a raw value (CLI text, or a DAG param's JSON value) into the config's value;
# `label` is the name the user typed (`--workers` or `workers`), for the error message.
Parser = Callable[[Any, str], Any]


def _refuse(label: str, raw: Any, accepted: str) -> ConfigError:
    shown = repr(raw) if len(repr(raw)) <= 80 else repr(raw)[:77] + "..."
    return ConfigError(f"{label} {shown} is not accepted: {accepted}.")


def _integer(raw: Any) -> int | None:
    """A whole number from an int, an integral float or its text; None for anything else."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return int(raw) if raw.is_integer() else None
    if isinstance(raw, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", raw):
        return int(raw)
    return None


def _number(raw: Any) -> float | None:
    """A finite number from an int, a float or its text; None for anything else (nan, inf too)."""
    if isinstance(raw, bool):
        return None
    try:
        value = float(raw) if isinstance(raw, (int, float, str)) else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def parse_workers(raw: Any, label: str) -> int:
    value = _integer(raw)
    if value is None or not 1 <= value <= MAX_WORKERS:
        raise _refuse(label, raw, f"use a whole number from 1 to {MAX_WORKERS}")
    return value


def parse_seconds(raw: Any, label: str) -> float:
    value = _number(raw)
    if value is None or not 0 <= value <= 86400:
        raise _refuse(label, raw, "use a number of seconds from 0 to 86400")
    return value


def parse_days(raw: Any, label: str) -> float:
    value = _number(raw)
    if value is None or value < 0:
        raise _refuse(label, raw, "use a number of days, 0 or more (0 walks every folder every run)")
    return value


def _size(raw: Any, label: str, unit: int, unit_name: str) -> int:
    """Bytes from `5G`, `200M`, `1.5T` (binary multiples) or a bare number of `unit`s."""
    text = str(raw).strip().upper().removesuffix("B") if isinstance(raw, str) else raw
    multiple = unit
    if isinstance(text, str) and text[-1:] in _SIZE_UNITS:
        text, multiple = text[:-1], _SIZE_UNITS[text[-1]]
    value = _number(text)
    size = value * multiple if value is not None else 0
    if not math.isfinite(size) or size < 1:
        raise _refuse(label, raw, f"use a size above 0, in {unit_name} or with K, M, G or T (e.g. 5G)")
    return int(size)


def parse_size(raw: Any, label: str) -> int:
    """A size in bytes: `5G`, `200M`, `1024`."""
    return _size(raw, label, 1, "bytes")


def parse_size_mib(raw: Any, label: str) -> int:
    """A size in MiB (the DAG's `max_file_size_mb`), or with its own unit (`5G`)."""
    return _size(raw, label, _MIB, "MiB")


def parse_flag(raw: Any, label: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise _refuse(label, raw, "use true or false")


def parse_globs(raw: Any, label: str) -> tuple[str, ...]:
    if isinstance(raw, (list, tuple)) and all(isinstance(v, str) for v in raw):
        return tuple(raw)
    raise _refuse(label, raw, "use a list of patterns, e.g. ['Riverside*']")


def parse_sources(raw: Any, label: str) -> tuple[str, ...]:
    """Which sources to mirror: a list of docs and vault, each once; empty = every source the
    connection reaches (docs, and vault when it has a vault_url)."""
    if isinstance(raw, str):
        raw = [part for part in (p.strip() for p in raw.split(",")) if part]
    if isinstance(raw, (list, tuple)) and all(isinstance(v, str) for v in raw):
        names = tuple(v.strip().lower() for v in raw)
        if all(n in SOURCES for n in names) and len(set(names)) == len(names):
            return names
    raise _refuse(label, raw, f"use a list of {' and '.join(SOURCES)}, each once, e.g. ['docs', 'vault']")


def _choice(choices: tuple[str, ...]) -> Parser:
    def parse(raw: Any, label: str) -> str:
        if isinstance(raw, str) and raw.strip().lower() in choices:
            return raw.strip().lower()
        raise _refuse(label, raw, f"use one of {', '.join(choices)}")

    return parse


def _named(choices: tuple[str, ...]) -> Parser:
    """One of `choices` in any case, given back in S3's own spelling (STANDARD_IA, aws:kms)."""
    def parse(raw: Any, label: str) -> str:
        spelled = {c.casefold(): c for c in choices}
        if isinstance(raw, str) and raw.strip().casefold() in spelled:
            return spelled[raw.strip().casefold()]
        raise _refuse(label, raw, f"use one of {', '.join(choices)}")

    return parse


def parse_account_id(raw: Any, label: str) -> str:
    if isinstance(raw, str) and re.fullmatch(r"[0-9]{12}", raw.strip()):
        return raw.strip()
    raise _refuse(label, raw, "use the 12-digit AWS account id that owns the bucket")


def parse_kms_key_id(raw: Any, label: str) -> str:
    if isinstance(raw, str) and re.fullmatch(r"[A-Za-z0-9:/_.+=@-]{1,2048}", raw.strip()):
        return raw.strip()
    raise _refuse(label, raw, "use a KMS key id, key ARN, alias name (alias/...) or alias ARN")


def parse_lock_days(raw: Any, label: str) -> int:
    value = _integer(raw)
    if value is None or not 1 <= value <= MAX_LOCK_DAYS:
        raise _refuse(label, raw, f"use a whole number of days from 1 to {MAX_LOCK_DAYS}")
    return value


def parse_delete_policy(raw: Any, label: str) -> Any:
    from aps_mirror.mirror.plan import DeletePolicy

    return DeletePolicy(_choice(DELETE_POLICIES)(raw, label))


def parse_max_delete(raw: Any, label: str) -> Any:
    from aps_mirror.mirror.plan import DeleteLimit

    return DeleteLimit.parse(raw, name=label)


# S3's bucket naming rules (general purpose buckets): the parts a regex cannot say are below.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def parse_bucket(raw: Any, label: str) -> str:
    if isinstance(raw, str) and _BUCKET.fullmatch(raw) and ".." not in raw \
            and not raw.startswith(_BUCKET_RESERVED_PREFIXES) and not raw.endswith(_BUCKET_RESERVED_SUFFIXES) \
            and not _is_ip_address(raw):
        return raw
    raise _refuse(label, raw, "use an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-', "
                              "starting and ending with a letter or digit")


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def parse_prefix(raw: Any, label: str) -> str:
    """Key prefix: `/`-separated segments that can neither climb out nor land on the metadata."""
    accepted = (f"use 1 to {MAX_PREFIX_CHARS} characters of '/'-separated segments, no leading '/', "
                f"no empty, '.', '..' or {RESERVED_SEGMENT!r} segment, no control characters")
    if not isinstance(raw, str) or not 1 <= len(raw) <= MAX_PREFIX_CHARS:
        raise _refuse(label, raw, accepted)
    if any(unicodedata.category(c) == "Cc" for c in raw):
        raise _refuse(label, raw, f"it holds a control character; {accepted}")
    for segment in raw.split("/"):
        if segment in ("", ".", "..") or segment.casefold() == RESERVED_SEGMENT:
            raise _refuse(label, raw, f"segment {segment!r} is not allowed; {accepted}")
    return raw


# JSON-schema spellings of the rules above, for Airflow's trigger form (ECMA-262 and Python `re`
# alike). A test checks that they accept exactly what the parsers accept.
_RESERVED_ANY_CASE = "".join(f"[{c}{c.upper()}]" if c.isalpha() else re.escape(c) for c in RESERVED_SEGMENT)
PREFIX_PATTERN = (
    r"^(?![^\n]*\n)(?!/)(?!.*//)(?!.*/$)(?!(?:.*/)?\.\.?(?:/|$))"
    rf"(?!(?:.*/)?{_RESERVED_ANY_CASE}(?:/|$))[^\x00-\x1f\x7f-\x9f]{{1,{MAX_PREFIX_CHARS}}}$"
)
MAX_DELETE_PATTERN = r"^\s*(?:[0-9]+|(?:0*100(?:\.0*)?|0*[0-9]{1,2}(?:\.[0-9]*)?|\.[0-9]+)\s*%)\s*$"
BUCKET_PATTERN = r"^(?![^\n]*\n)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_GLOBS = {"type": "array", "items": {"type": "string"}}


def _optional_enum(choices: tuple[str, ...]) -> dict[str, Any]:
    return {"type": ["null", "string"], "enum": [None, *choices]}


@dataclass(frozen=True)
class SyncOption:
    """One sync option: its `MirrorConfig` field, CLI flag, DAG param and the rule for its values."""

    name: str  # the MirrorConfig field, and the DAG param unless `param` says otherwise
    default: Any  # in the CLI's spelling; None = unset (no limit)
    help: str
    parse: Parser
    schema: Mapping[str, Any]  # the DAG param's JSON schema (its type decides the CLI action)
    flag: str = ""  # the CLI flag; default --<name with dashes>
    metavar: str | None = None
    required: bool = False
    param: str = ""  # the DAG param's name when it is not `name`
    parse_param: Parser | None = None  # the DAG param in another unit (MiB); defaults go through `parse`

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def param_name(self) -> str:
        return self.param or self.name

    @property
    def kind(self) -> str:
        types = self.schema.get("type", "string")
        return "array" if "array" in types else "boolean" if "boolean" in types else "value"

    def value(self, values: Mapping[str, Any], *, cli: bool) -> Any:
        """This option's config value from `values` (CLI args or DAG params); empty = the default."""
        key, label = (self.name, self.cli_flag) if cli else (self.param_name, self.param_name)
        parse = self.parse if cli else self.parse_param or self.parse
        raw = values.get(key)
        if raw is None or raw == "":
            if self.required:
                raise ConfigError(f"{label} is required: {self.help}")
            raw, parse = self.default, self.parse
        return None if raw is None else parse(raw, label)


SYNC_OPTIONS: tuple[SyncOption, ...] = (
    SyncOption("bucket", None, "S3 bucket of the mirror (must exist).", parse_bucket,
               {"type": "string", "minLength": 3, "maxLength": 63, "pattern": BUCKET_PATTERN}, required=True),
    SyncOption("prefix", "autodesk", "Key prefix of the mirror inside the bucket.", parse_prefix,
               {"type": "string", "minLength": 1, "maxLength": MAX_PREFIX_CHARS, "pattern": PREFIX_PATTERN}),
    SyncOption("hub_filter", (), "Globs on hub name or id (ids with or without 'b.'); empty = every hub.",
               parse_globs, _GLOBS, flag="--hub", metavar="GLOB"),
    SyncOption("exclude_hubs", (), "Globs on hub name or id never to mirror (wins over the hub filter).",
               parse_globs, _GLOBS, flag="--exclude-hub", metavar="GLOB"),
    SyncOption("project_filter", (), "Globs on project name or id (e.g. 'Riverside*'; ids with or without "
               "'b.'); empty = every project.", parse_globs, _GLOBS, flag="--project", metavar="GLOB"),
    SyncOption("exclude_projects", (), "Globs on project name or id never to mirror (wins over the project "
               "filter); excluded projects are neither copied nor retired.", parse_globs, _GLOBS,
               flag="--exclude-project", metavar="GLOB"),
    SyncOption("top_folders", (), "Globs on top folder names, e.g. 'Plans' or '*' for all; empty = 'Project "
               "Files' in ACC and BIM 360 hubs, every top folder in Fusion/A360 hubs. ACC system folders "
               "only when named (e.g. 'Photos').", parse_globs, _GLOBS, flag="--top-folder", metavar="GLOB"),
    SyncOption("extensions", (), "Only files with these extensions (e.g. 'rvt'); empty = every file.",
               parse_globs, _GLOBS, flag="--extension", metavar="EXT"),
    SyncOption("exclude_extensions", (), "Never files with these extensions (e.g. 'tmp').",
               parse_globs, _GLOBS, flag="--exclude-extension", metavar="EXT"),
    SyncOption("max_file_size", None, "Skip files larger than this; empty = no limit. CLI: bytes or with K, "
               "M, G, T (5G); DAG param max_file_size_mb: MiB.", parse_size,
               {"type": ["null", "number"], "exclusiveMinimum": 0}, metavar="SIZE",
               param="max_file_size_mb", parse_param=parse_size_mib),
    SyncOption("workers", 4, f"Parallel transfers per project (1 to {MAX_WORKERS}).", parse_workers,
               {"type": "integer", "minimum": 1, "maximum": MAX_WORKERS}, metavar="N"),
    SyncOption("project_workers", 4, f"Projects synced at once (1 to {MAX_WORKERS}); in the DAG, within "
               "each batch.", parse_workers, {"type": "integer", "minimum": 1, "maximum": MAX_WORKERS},
               metavar="N"),
    SyncOption("dry_run", False, "Plan only: list what would be copied or deleted, write nothing.",
               parse_flag, {"type": "boolean"}),
    SyncOption("full_walk", False, "List every folder this run, whatever the rollups say (catches what "
               "they miss).", parse_flag, {"type": "boolean"}),
    SyncOption("full_walk_days", 7.0, "List every folder when the last full walk is older than this many "
               "days.", parse_days, {"type": "number", "minimum": 0}, metavar="DAYS"),
    SyncOption("delete_policy", "keep", "Files deleted in Autodesk: keep (marked deleted in the manifest), "
               "trash (moved under _aps_mirror/trash/) or delete.", parse_delete_policy,
               {"type": "string", "enum": list(DELETE_POLICIES)}, metavar="{" + ",".join(DELETE_POLICIES) + "}"),
    SyncOption("max_delete", "10%", "Refuse to delete more files than this count (50) or percentage of a "
               "project's files (10%, at most 100%; 100% allows any number).", parse_max_delete,
               {"type": "string", "pattern": MAX_DELETE_PATTERN}, metavar="N|P%"),
    SyncOption("versions", "tip", "tip: each file's latest version; all: also every earlier version, under "
               "<project>/_versions/.", _choice(VERSIONS), {"type": "string", "enum": list(VERSIONS)},
               metavar="{" + ",".join(VERSIONS) + "}"),
    SyncOption("sources", (), "Where files come from: docs (Autodesk Docs, BIM 360, ACC, Fusion) and vault "
               "(Autodesk Vault, through the connection's vault_url); empty = docs, and vault when the "
               "connection has a vault_url.", parse_sources,
               {"type": "array", "items": {"type": "string", "enum": list(SOURCES)}, "uniqueItems": True},
               flag="--source", metavar="{" + ",".join(SOURCES) + "}"),
    SyncOption("allow_other_account", False, "Mirror into a prefix that already holds another account's "
               "mirror (both are kept there); without it such a run is refused.", parse_flag, {"type": "boolean"}),
    SyncOption("lock_wait_seconds", 300.0, "One run at a time per prefix: wait this many seconds for another "
               "run to finish before refusing.", parse_seconds, {"type": "number", "minimum": 0},
               flag="--lock-wait", metavar="SECONDS"),
    SyncOption("break_lock", False, "Take over the prefix's lock left by a run that died (check that it is "
               "not running first: a live run would lose its lock).", parse_flag, {"type": "boolean"}),
    # Protection of the objects (aps_mirror.mirror.protection): on every request of the run.
    SyncOption("storage_class", None, "S3 storage class of mirrored files (not of the mirror's bookkeeping); "
               "empty = the bucket's default.", _named(STORAGE_CLASSES), _optional_enum(STORAGE_CLASSES),
               metavar="CLASS"),
    SyncOption("sse", None, "Server-side encryption of every object written: AES256 (SSE-S3) or aws:kms "
               "(SSE-KMS); empty = the bucket's default.", _named(SSE_MODES), _optional_enum(SSE_MODES),
               metavar="{" + ",".join(SSE_MODES) + "}"),
    SyncOption("sse_kms_key_id", None, "The KMS key of sse aws:kms (id, ARN or alias); empty = the account's "
               "aws/s3 key.", parse_kms_key_id, {"type": ["null", "string"], "maxLength": 2048},
               flag="--sse-kms-key-id", metavar="KEY"),
    SyncOption("expected_bucket_owner", None, "The 12-digit AWS account that must own the bucket, sent with "
               "every request (S3 refuses if another account owns it).", parse_account_id,
               {"type": ["null", "string"], "pattern": "^[0-9]{12}$"}, metavar="ACCOUNT"),
    SyncOption("object_tags", False, "Tag mirrored files with their hub, project and item ids "
               "(aps-hub-id, aps-project-id, aps-item-id).", parse_flag, {"type": "boolean"}),
    SyncOption("checksum_algorithm", None, "An S3 additional checksum computed and kept by S3 for every "
               "upload and copy, e.g. SHA256; empty = the SDK's default.", _named(CHECKSUM_ALGORITHMS),
               _optional_enum(CHECKSUM_ALGORITHMS), metavar="ALGORITHM"),
    SyncOption("object_lock_mode", None, "S3 Object Lock retention of mirrored files: GOVERNANCE or "
               "COMPLIANCE, for object_lock_days (the bucket must have Object Lock).", _named(LOCK_MODES),
               _optional_enum(LOCK_MODES), metavar="{" + ",".join(LOCK_MODES) + "}"),
    SyncOption("object_lock_days", None, "Days each mirrored file's version stays locked after it is "
               "written (with object_lock_mode).", parse_lock_days,
               {"type": ["null", "integer"], "minimum": 1, "maximum": MAX_LOCK_DAYS}, metavar="DAYS"),
    SyncOption("legal_hold", False, "Put an S3 Object Lock legal hold on every mirrored file (the bucket "
               "must have Object Lock).", parse_flag, {"type": "boolean"}),
)


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per option. Values are checked by `mirror_config`, not argparse, so a bad one is
    one line (argparse would print its usage too)."""
    for option in SYNC_OPTIONS:
        text = option.help.replace("%", "%%")  # argparse formats help with %
        if option.kind == "boolean":
            parser.add_argument(option.cli_flag, dest=option.name, action="store_true", help=text)
        elif option.kind == "array":
            parser.add_argument(option.cli_flag, dest=option.name, action="append", default=[],
                                metavar=option.metavar, help=f"{text} (repeatable)")
        else:
            default = f" (default: {option.default})".replace("%", "%%") if option.default is not None else ""
            parser.add_argument(option.cli_flag, dest=option.name, default=None, required=option.required,
                                metavar=option.metavar, help=text + default)


def dag_params(**defaults: Any) -> dict[str, dict[str, Any]]:
    """The DAG's params, one per option, as `Param` keyword arguments (the DAG wraps them: the
    core imports no Airflow); `defaults` overrides a default by param name, e.g. `bucket=...`,
    `max_file_size_mb=100` (in the param's unit)."""
    params = {}
    for option in SYNC_OPTIONS:
        default = defaults.get(option.param_name, option.default)
        params[option.param_name] = {"default": list(default) if option.kind == "array" else default,
                                     "description": option.help, **option.schema}
    return params


def mirror_config(values: Mapping[str, Any], *, cli: bool = False) -> MirrorConfig:
    """The run's `MirrorConfig` from DAG params (or, with `cli`, parsed CLI arguments): every
    value checked, a bad one refused with a one-line ConfigError. Keys that are not sync
    options (connection ids) are ignored; a missing or empty value takes the default."""
    from aps_mirror.mirror.engine import MirrorConfig

    return MirrorConfig(**{option.name: option.value(values, cli=cli) for option in SYNC_OPTIONS})
