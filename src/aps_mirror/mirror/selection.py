"""Selection: which hubs, projects, top folders and files a mirror covers.

Like rclone's filters, what is not selected is neither copied nor deleted.
"""

from __future__ import annotations

import fnmatch
import logging
import re

from aps_mirror.aps.models import Folder

log = logging.getLogger(__name__)

# ACC creates these top folders for its own services; users want their documents.
_ACC_SYSTEM_FOLDERS = re.compile(
    r"^(checklist_.*|submittals-attachments|photos|projecttb|dailylog_.*|issue_.*|cost root folder"
    r"|recycle bin|quantification_.*|rfis_project_.*|assets_.*|correspondence-project-.*|meetings-project-.*"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$",
    re.IGNORECASE,
)

# Hubs whose projects have a "Project Files" top folder (ACC and BIM 360): by default only it
# is mirrored. Other hubs (Fusion Team / A360 `hubs:autodesk.core:Hub`, personal hubs
# `hubs:autodesk.a360:PersonalHub`) have no such folder: all their top folders are mirrored.
ACC_HUB_TYPES = frozenset({"hubs:autodesk.bim360:Account"})
PROJECT_FILES = "Project Files"
_WILDCARDS = ("*", "?", "[")


def matches_filter(patterns: tuple[str, ...], *values: str) -> bool:
    """True when no pattern is given or any glob matches any value (case-insensitive)."""
    if not patterns:
        return True
    return any(fnmatch.fnmatch(v.casefold(), p.casefold()) for p in patterns for v in values)


def is_selected(include: tuple[str, ...], exclude: tuple[str, ...], name: str, id_: str) -> bool:
    """Whether a hub or project is selected: an `exclude` glob matching its name or id wins,
    else any `include` glob must match (none given: all). Globs are fnmatch, case-insensitive;
    an id matches with or without its `b.` prefix (ACC and BIM 360 ids carry it)."""
    values = (name, id_, id_[2:]) if id_.startswith("b.") else (name, id_)
    if exclude and matches_filter(exclude, *values):
        return False
    return matches_filter(include, *values)


def select_top_folders(tops: list[Folder], patterns: tuple[str, ...], hub_type: str | None,
                       label: str = "") -> list[Folder]:
    """The top folders to walk, out of those Autodesk lists (hidden ones never).

    Without `patterns`, the default: in an ACC / BIM 360 hub (`ACC_HUB_TYPES`) "Project Files"
    only (Plans and the rest on request); in any other hub (Fusion Team, A360, personal) every
    top folder but ACC's system ones. A hub of unknown type gets the ACC default when a
    "Project Files" folder is listed. Should an ACC project list no "Project Files" (a user who
    may only open folders below it sees those as top folders), every non-system top folder is
    walked, rather than nothing.

    With `patterns` (globs on the name, case-insensitive), the folders they match; `*` is every
    non-system top folder. ACC system folders (Photos, Recycle Bin, issue_..., ...) are only
    selected when named: by a pattern that matches them and does not begin with a wildcard
    (`Photos`, `issue_*`; never `*` or `*s`).
    """
    visible = [f for f in tops if not f.hidden]
    if not patterns:
        has_project_files = any(f.name.casefold() == PROJECT_FILES.casefold() for f in visible)
        acc = hub_type in ACC_HUB_TYPES if hub_type else has_project_files
        if acc and has_project_files:
            patterns = (PROJECT_FILES,)
        else:
            if acc:
                log.info("%s: no %r top folder listed; walking every non-system top folder",
                         label, PROJECT_FILES)
            patterns = ("*",)
    return [f for f in visible if _top_selected(f.name, patterns)]


def _top_selected(name: str, patterns: tuple[str, ...]) -> bool:
    if _ACC_SYSTEM_FOLDERS.match(name):
        named = tuple(p for p in patterns if not p.startswith(_WILDCARDS))
        return bool(named) and matches_filter(named, name)
    return matches_filter(patterns, name)
