"""The webhook secret of an `autodesk` connection: kept in its extra, given to Autodesk.

Autodesk signs every callback with one secret token per app (2-legged) or per user (3-legged),
set through the tokens API. The receiver reads it from the connection's extra on each delivery:
`webhook_secret` (current), `webhook_secret_previous` and `webhook_secret_changed_at` (both
secrets are accepted for 15 minutes after a change, Autodesk taking up to 10 to apply one).

Order of a change, so that a crash anywhere converges on the next run: the new value is saved
in the connection first with `webhook_secret_pending`, then given to Autodesk, then the mark is
removed. A pending mark (or a secret without `changed_at`, put there by hand) means "Autodesk
may not have it": the next run gives it again. The values never reach a log line, a report or
an error text.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Protocol

from aps_mirror.aps.webhooks import ApsWebhooks
from aps_mirror.connection import ConnectionFields, env_var_name, lookup_connection
from aps_mirror.errors import ApiError, ConfigError

log = logging.getLogger(__name__)

SECRET_KEY = "webhook_secret"
PREVIOUS_KEY = "webhook_secret_previous"
CHANGED_AT_KEY = "webhook_secret_changed_at"
PENDING_KEY = "webhook_secret_pending"  # saved, not yet known to be applied at Autodesk

# What `SecretKeeper.ensure` did (or would do, dry run).
KEPT, CREATED, ROTATED, RESENT = "kept", "created", "rotated", "resent"


class ExtraWriter(Protocol):
    """Changes keys of a connection's extra where readers look (None deletes a key): the
    Airflow adapter's ConnectionWriter (ORM outside tasks, REST API inside them)."""

    def update_extra(self, conn_id: str, changes: dict[str, Any]) -> None: ...


def installed_writer(conn_id: str) -> ExtraWriter | None:
    """The installed backend's connection writer: the one its refresh-token store writes with,
    or None where connections cannot be written (no Airflow)."""
    from aps_mirror.backends import installed_backend

    backend = installed_backend()
    if backend is None:
        return None
    writer = getattr(backend, "connection_writer", None)  # a backend may offer it directly
    if callable(writer):
        return writer(conn_id)
    return getattr(backend.token_store(conn_id), "writer", None)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class SecretKeeper:
    """Makes sure the connection has a webhook secret and Autodesk has the same one.

    `writer` None: the connection cannot be written here (a change is then a ConfigError).
    `rotate`: make a new secret even when one is kept (the old one becomes the previous).
    """

    writer: ExtraWriter | None
    rotate: bool = False
    read: Callable[[str], ConnectionFields | None] = lookup_connection

    def ensure(self, api: ApsWebhooks, conn_id: str, regions: Iterable[str | None] = (None,), *,
               dry_run: bool = False) -> str:
        """KEPT, CREATED, ROTATED or RESENT; in a dry run, what would be done."""
        extra = self._extra(conn_id)
        current = _secret(conn_id, extra, SECRET_KEY)
        if current and not self.rotate and extra.get(CHANGED_AT_KEY) and not extra.get(PENDING_KEY):
            return KEPT
        if current and not self.rotate:
            secret, outcome = current, RESENT  # saved, but Autodesk may not have it
            changes: dict[str, Any] = {CHANGED_AT_KEY: now_iso(), PENDING_KEY: True}
        else:
            secret, outcome = secrets.token_urlsafe(32), ROTATED if current else CREATED
            changes = {SECRET_KEY: secret, PREVIOUS_KEY: current, CHANGED_AT_KEY: now_iso(), PENDING_KEY: True}
        if dry_run:
            return outcome
        self._save(conn_id, changes, secret, undo={k: extra.get(k) for k in changes})
        for region in sorted(set(regions), key=lambda r: r or ""):
            try:
                how = api.set_token(secret, region=region)
            except ApiError as exc:
                raise ApiError(f"The new webhook secret is saved in connection {conn_id!r} but Autodesk did "
                               f"not take it ({exc}); run `aps-mirror webhooks ensure` again.",
                               status=exc.status, code=exc.code, endpoint=exc.endpoint,
                               request_id=exc.request_id) from None
            log.info("Webhook secret of connection %r %s at Autodesk%s", conn_id, how,
                     f" ({region})" if region else "")
        self._write(conn_id, {PENDING_KEY: None})
        return outcome

    def _extra(self, conn_id: str) -> dict[str, Any]:
        fields = self.read(conn_id)
        if fields is None:
            raise ConfigError(f"Connection {conn_id!r} was not found; create it first.")
        return dict(fields.extra)

    def _save(self, conn_id: str, changes: dict[str, Any], secret: str, undo: dict[str, Any]) -> None:
        """Write, then read back where the receiver will look: a connection shadowed by an
        environment variable or a secrets backend would never show the new value."""
        if os.environ.get(env_var_name(conn_id)):
            raise _unwritable(conn_id, f"the environment variable {env_var_name(conn_id)}")
        self._write(conn_id, changes)
        if _secret(conn_id, self._extra(conn_id), SECRET_KEY) != secret:
            self._write(conn_id, undo)  # leave nothing half-done where nobody reads it
            raise _unwritable(conn_id, "a secrets backend (or a cache) that aps-mirror does not write")

    def _write(self, conn_id: str, changes: dict[str, Any]) -> None:
        if self.writer is None:
            raise _unwritable(conn_id, "a place aps-mirror cannot write here (Airflow is not installed)")
        self.writer.update_extra(conn_id, changes)


def _secret(conn_id: str, extra: dict[str, Any], key: str) -> str | None:
    value = extra.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"Connection {conn_id!r} has extra.{key} of type {type(value).__name__}; it must "
                          f"be text: remove it and run `aps-mirror webhooks ensure` to make a new one.")
    return value


def _unwritable(conn_id: str, where: str) -> ConfigError:
    return ConfigError(f"Connection {conn_id!r} is read from {where}, so aps-mirror cannot keep its webhook "
                       "secret there: define the connection in Airflow's database (Admin > Connections) "
                       "and run again.")
