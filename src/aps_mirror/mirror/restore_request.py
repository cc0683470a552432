"""What a restore is asked for, as `aps-mirror restore` and the restore DAG take it: the same
rules for both, each refusal one line naming the value as the user typed it (a CLI flag, or a
DAG param). Light on imports: the DAG file checks its arguments with it while being parsed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from aps_mirror.errors import ConfigError
from aps_mirror.options import parse_flag, parse_workers

DEFAULT_WORKERS = 4  # files restored at once

# How the user typed each setting, for the one-line refusals: the CLI's flags, or the DAG's params.
CLI_NAMES = {"project": "--project", "path": "--path", "as_of": "--as-of", "into": "--into",
             "in_place": "--in-place", "dry_run": "--dry-run", "workers": "--workers"}
PARAM_NAMES = {setting: setting for setting in CLI_NAMES}


@dataclass(frozen=True)
class RestoreRequest:
    projects: tuple[str, ...]  # globs on project names or ids
    path: str | None = None  # an Autodesk path prefix ("Project Files/Design")
    as_of: datetime | None = None  # None: the latest mirrored state
    into: str | None = None  # an Autodesk path, top folder first
    in_place: bool = False
    dry_run: bool = False

    def __post_init__(self) -> None:
        check_target(self.into, self.in_place, CLI_NAMES)


def restore_request(values: Mapping[str, Any], names: Mapping[str, str] = CLI_NAMES) -> RestoreRequest:
    """A request from CLI arguments or DAG params (`project`, `path`, `as_of`, `into`, `in_place`,
    `dry_run`), each value checked: a bad one is a one-line ConfigError naming it as `names` say.
    An empty text is no value."""
    raw = values.get("project")
    if raw is None or raw == "" or raw == []:
        raise ConfigError(f"{names['project']} is required: give a glob on project names or ids, e.g. 'Riverside*'.")
    projects = [raw] if isinstance(raw, str) else raw
    if not isinstance(projects, (list, tuple)) or \
            not all(isinstance(p, str) and p.strip() for p in projects):
        raise ConfigError(f"{names['project']} {raw!r} is not accepted: give a glob on project names or ids, "
                          "e.g. 'Riverside*'.")
    path, into = (_optional_text(values.get(key), names[key]) for key in ("path", "into"))
    in_place, dry_run = (parse_flag(values.get(key) or False, names[key]) for key in ("in_place", "dry_run"))
    as_of = parse_as_of(_optional_text(values.get("as_of"), names["as_of"]), names["as_of"])
    check_target(into, in_place, names)
    return RestoreRequest(projects=tuple(projects), path=path, as_of=as_of, into=into, in_place=in_place,
                          dry_run=dry_run)


def check_target(into: str | None, in_place: bool, names: Mapping[str, str]) -> None:
    if into is not None and in_place:
        raise ConfigError(f"{names['into']} and {names['in_place']} exclude each other: restore into a folder, "
                          "or in place.")
    if into is not None and not [p for p in into.split("/") if p.strip()]:
        raise ConfigError(f"{names['into']} {into!r} is not accepted: give a path that starts with a top "
                          "folder, e.g. 'Project Files/Recovered'.")


def parse_as_of(text: str | None, label: str = "--as-of") -> datetime | None:
    """An ISO 8601 time in the past (UTC unless it says otherwise); None for the latest state."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{label} {text!r} is not accepted: give an ISO 8601 time, "
                          "e.g. 2026-11-28T18:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if moment > datetime.now(timezone.utc):
        raise ConfigError(f"{label} {text!r} is in the future: give a past time, or leave it out for the "
                          "latest state.")
    return moment


def parse_restore_workers(raw: Any, label: str = "--workers") -> int:
    return DEFAULT_WORKERS if raw is None or raw == "" else parse_workers(raw, label)


def _optional_text(raw: Any, label: str) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ConfigError(f"{label} {raw!r} is not accepted: give a text, or leave it empty.")
    return raw
