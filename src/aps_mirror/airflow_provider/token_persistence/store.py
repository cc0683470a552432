"""`AirflowTokenStore`: the TokenStore and RotationGuard over an Airflow connection."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Any

from aps_mirror.airflow_provider import connections
from aps_mirror.airflow_provider.connections import get_connection_fields, in_task
from aps_mirror.airflow_provider.token_persistence.bookkeeping import (
    ACCOUNT_KEY,
    FINGERPRINT_KEY,
    GENERATION_KEY,
    PENDING_KEY,
    REFRESH_TOKEN_KEY,
    ROTATED_AT_KEY,
    now_iso,
)
from aps_mirror.airflow_provider.token_persistence.locks import rotation_lock
from aps_mirror.airflow_provider.token_persistence.shadowing import shadow_error, shadowing_source
from aps_mirror.airflow_provider.token_persistence.writers import ConnectionWriter, default_writer
from aps_mirror.aps.auth import Authorization, fingerprint
from aps_mirror.errors import AuthError, ConfigError

log = logging.getLogger(__name__)

FAULT_FILE_ENV = "APS_MIRROR_FAULT_FILE"  # tests only: see _maybe_crash()


class AirflowTokenStore:
    """TokenStore + RotationGuard over an Airflow connection, safe across workers and tasks."""

    def __init__(self, conn_id: str, writer: ConnectionWriter | None = None,
                 lock_url: str | None = None) -> None:
        self.conn_id = conn_id
        self._writer = writer
        self._lock_url = lock_url
        self._extra: dict[str, Any] = {}
        self._shadow_checked = False

    @property
    def writer(self) -> ConnectionWriter:
        if self._writer is None:
            self._writer = default_writer()
        return self._writer

    # -- RotationGuard
    def rotation(self) -> contextlib.AbstractContextManager[None]:
        self._check_not_shadowed()  # before anything is spent
        return rotation_lock(self.conn_id, self._lock_url)

    def before_refresh(self, refresh_token: str) -> None:
        self.writer.update_extra(self.conn_id, {PENDING_KEY: {
            "fingerprint": fingerprint(refresh_token), "since": now_iso(),
            "by": f"{socket.gethostname()}:{os.getpid()}"}})

    def diagnose_rejected(self, refresh_token: str) -> str | None:
        pending = self._read_extra().get(PENDING_KEY)
        if isinstance(pending, dict) and pending.get("fingerprint") == fingerprint(refresh_token):
            return (f"An earlier refresh (by {pending.get('by')} at {pending.get('since')}) spent "
                    "this token and died before saving its successor (the process crashed or was "
                    "killed between refresh and persistence), so the token chain is lost.")
        return None

    # -- TokenStore
    def load_refresh_token(self) -> str | None:
        with connections._unsaved_lock:
            unsaved = connections._unsaved.get(self.conn_id)
        if unsaved:
            return unsaved
        token = self._read_extra().get(REFRESH_TOKEN_KEY)
        return str(token) if token else None

    def save_refresh_token(self, refresh_token: str) -> None:
        self._save({REFRESH_TOKEN_KEY: refresh_token}, refresh_token)

    def save_authorization(self, auth: Authorization, account: dict[str, Any]) -> None:
        """Store a fresh consent (authorize flows), under the same lock as refreshes."""
        with self.rotation():
            self._read_extra()
            self._save({REFRESH_TOKEN_KEY: auth.refresh_token,
                        ACCOUNT_KEY: {**account, "scopes": " ".join(auth.scopes), "at": now_iso()}},
                       auth.refresh_token)

    # -- internals
    def _save(self, changes: dict[str, Any], refresh_token: str) -> None:
        connections.mask(refresh_token)
        _maybe_crash()
        generation = int(self._extra.get(GENERATION_KEY) or 0) + 1
        changes = {**changes, GENERATION_KEY: generation, FINGERPRINT_KEY: fingerprint(refresh_token),
                   ROTATED_AT_KEY: now_iso(), PENDING_KEY: None}
        try:
            self.writer.update_extra(self.conn_id, changes)
            stored = self._read_extra()  # read back where the next reader will look
            if stored.get(FINGERPRINT_KEY) != fingerprint(refresh_token):
                source = shadowing_source(self.conn_id) or "a secrets cache or another writer"
                raise ConfigError(f"the saved token is not what Airflow returns for the "
                                  f"connection: it is shadowed by {source}")
        except Exception as exc:  # noqa: BLE001 - any failure must become the loud warning
            with connections._unsaved_lock:
                connections._unsaved[self.conn_id] = refresh_token
            log.error(
                "APS rotated the refresh token of connection %r but it could NOT be saved: %s. "
                "It is kept in memory for the rest of this process only; once it ends the next "
                "run needs re-authorization (`aps-mirror authorize --conn-id %s` or the UI's "
                "'Connect Autodesk account' page). Fix the cause first.",
                self.conn_id, _describe(exc), self.conn_id)
            return
        with connections._unsaved_lock:
            connections._unsaved.pop(self.conn_id, None)
        log.info("Stored the rotated APS refresh token of connection %r (generation %d, %s).",
                 self.conn_id, generation, fingerprint(refresh_token))

    def _read_extra(self) -> dict[str, Any]:
        fields = get_connection_fields(self.conn_id)
        self._extra = dict(fields.extra) if fields else {}
        return self._extra

    def _check_not_shadowed(self) -> None:
        if self._shadow_checked:
            return
        source = shadowing_source(self.conn_id)
        if source:
            raise shadow_error(self.conn_id, source)
        self._shadow_checked = True


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (ConfigError, AuthError)):
        return str(exc)
    where = "inside a task, where Airflow blocks database access" if in_task() else \
        "the Airflow metadata database could not be written"
    return f"{where} ({type(exc).__name__})"


def _maybe_crash() -> None:
    """Test hook: die like a killed worker after APS rotated the token, before it is saved.

    Armed only when APS_MIRROR_FAULT_FILE names a file containing `kill-after-refresh`; the
    file is removed first, so exactly one process dies.
    """
    path = os.environ.get(FAULT_FILE_ENV)
    if not path:
        return
    try:
        armed = Path(path).read_text().strip() == "kill-after-refresh"
        if armed:
            Path(path).unlink()
    except (FileNotFoundError, OSError):
        return
    if armed:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
