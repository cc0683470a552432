"""Each project's webhook state after an ensure, in a few words: what the catalog's `hooks`
table records and the dashboard shows (without asking Autodesk on every page view).

`state` is what ensure left: active (every watched folder has its active hook set), error
(the project's hooks could not be ensured: `error` says why), missing (no folder is watched:
the selected top folders are not in the project). `found` is what ensure found before it
repaired anything, in `aps-mirror webhooks list`'s words (active, inactive, expired, partial,
missing): a found state other than active means events may have been lost until the repair,
which the nightly scan catches.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aps_mirror.mirror.webhooks import EnsureReport, ProjectHooks

ACTIVE, INACTIVE, EXPIRED, PARTIAL, MISSING, ERROR = "active", "inactive", "expired", "partial", "missing", "error"


def project_state(outcome: ProjectHooks) -> tuple[str, str | None]:
    """(state after ensure, state ensure found) of one project; found is None when unknown."""
    if outcome.error:
        return ERROR, None
    if not outcome.folders:
        return MISSING, MISSING
    if outcome.sets_created == len(outcome.folders):
        return ACTIVE, MISSING
    if outcome.sets_created or outcome.created:
        return ACTIVE, PARTIAL
    if outcome.recreated:
        return ACTIVE, EXPIRED
    if outcome.reactivated:
        return ACTIVE, INACTIVE
    return ACTIVE, ACTIVE  # attribute updates and duplicates: events were delivered meanwhile


def changes(outcome: ProjectHooks) -> str | None:
    """What ensure changed, e.g. "1 new hook set, 20 hooks created"; None when nothing."""
    parts = [f"{n} {one if n == 1 else many}" for n, one, many in (
        (outcome.sets_created, "new hook set", "new hook sets"), (outcome.created, "hook created", "hooks created"),
        (outcome.reactivated, "reactivated", "reactivated"), (outcome.updated, "updated", "updated"),
        (outcome.recreated, "recreated", "recreated"), (outcome.deleted, "deleted", "deleted")) if n]
    return ", ".join(parts) or None


def standing_hooks(outcome: ProjectHooks) -> int:
    """Hooks of the project once ensure is done: one per event and watched folder."""
    return outcome.unchanged + outcome.updated + outcome.reactivated + outcome.created + outcome.recreated


def shown_url(url: str) -> str:
    """The callback URL without any user:password@ it may carry (the catalog is widely read)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def hook_rows(report: EnsureReport, checked_at: datetime) -> list[dict[str, Any]]:
    """One row per project of the report (the `hooks` table's columns but the ids'
    derived ones)."""
    rows = []
    for outcome in report.projects:
        state, found = project_state(outcome)
        rows.append({"hub_id": outcome.hub_id, "hub_name": outcome.hub_name, "project_id": outcome.project_id,
                     "project_name": outcome.project_name, "mirror": report.mirror,
                     "callback_url": shown_url(report.callback_url), "state": state, "found": found,
                     "hooks": None if outcome.error else standing_hooks(outcome),
                     "folders": len(outcome.folders), "changes": changes(outcome), "error": outcome.error,
                     "checked_at": checked_at})
    return rows


def failed_rows(previous: list[dict[str, Any]], *, mirror: str, callback_url: str, error: str,
                checked_at: datetime) -> list[dict[str, Any]]:
    """When ensure failed as a whole (no project checked): the projects of the previous check,
    each in error with `error`; or, with none, one row for the mirror (project columns null)."""
    callback_url = shown_url(callback_url)
    rows = [{**row, "mirror": mirror, "callback_url": callback_url, "state": ERROR, "found": None, "hooks": None,
             "changes": None, "error": error, "checked_at": checked_at}
            for row in previous if row.get("project_id")]
    return rows or [{"hub_id": None, "hub_name": None, "project_id": None, "project_name": None, "mirror": mirror,
                     "callback_url": callback_url, "state": ERROR, "found": None, "hooks": None, "folders": None,
                     "changes": None, "error": error, "checked_at": checked_at}]
