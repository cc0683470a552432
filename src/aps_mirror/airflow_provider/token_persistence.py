"""Keeping a rotating refresh token alive across every worker of an Airflow 3 deployment.

Why it is built this way (docs/auth.md has the operator's view):
- Inside a task on a real executor the ORM is blocked and the Task SDK cannot write
  connections, so a task writes through the Airflow REST API (`PATCH /api/v2/connections`)
  with a JWT from `/auth/token`. Outside tasks (CLI, API server, `dags test`) the ORM works.
- Reads go through Airflow's normal resolution (Task SDK -> API server -> database), which
  returns unmasked extras; the REST API masks them, so it is only used for writing.
- Refreshes are serialised by a lock keyed on the connection: a PostgreSQL advisory lock
  (session scoped: a killed holder releases it at once) or a Redis lock with a lease. The
  refresh token is loaded under the lock, so a worker adopts whatever the last holder saved.
- Next to the token, non-secret bookkeeping (`rt_generation`, `rt_fingerprint`,
  `rt_rotated_at`, `rt_pending`) tells readers whether their copy is current and lets a
  refusal after a crash be explained ("an earlier refresh died before saving").
- A connection that an env var or a secrets backend shadows cannot be written where readers
  look: that is detected BEFORE the refresh token is spent and reported as a ConfigError.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import struct
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Protocol

import requests

from aps_mirror.aps.auth import Authorization, fingerprint
from aps_mirror.connection import env_var_name
from aps_mirror.errors import AuthError, ConfigError

log = logging.getLogger(__name__)

REFRESH_TOKEN_KEY = "refresh_token"
GENERATION_KEY = "rt_generation"
FINGERPRINT_KEY = "rt_fingerprint"
ROTATED_AT_KEY = "rt_rotated_at"
PENDING_KEY = "rt_pending"
ACCOUNT_KEY = "connected_account"  # who consented, which scopes, when (shown in the UI)

API_CONN_ID_ENV = "APS_MIRROR_AIRFLOW_API_CONN_ID"
DEFAULT_API_CONN_ID = "aps_mirror_airflow_api"
LOCK_URL_ENV = "APS_MIRROR_LOCK_URL"
LOCK_WAIT_SECONDS = 120.0  # a refresh plus its persistence takes well under a second
REDIS_LEASE_MS = 60_000  # a Redis holder that died frees the lock after this long
FAULT_FILE_ENV = "APS_MIRROR_FAULT_FILE"  # tests only: see _maybe_crash()
# Backends that ARE the metadata database: a connection found there is writable.
_DATABASE_BACKENDS = {"MetastoreBackend", "ExecutionAPISecretsBackend"}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def in_task() -> bool:
    """True inside a running task (the Task SDK talks to a supervisor, not to the database)."""
    import sys

    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(runner, "SUPERVISOR_COMMS", None) is not None


# ---------------------------------------------------------------------------- shadowing
def shadowing_source(conn_id: str) -> str | None:
    """What defines `conn_id` ahead of the metadata database, or None when the DB row rules."""
    env_var = env_var_name(conn_id)
    if os.environ.get(env_var):
        return f"the environment variable {env_var}"
    try:
        if in_task():
            from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

            backends = ensure_secrets_backend_loaded()
        else:
            from airflow.configuration import ensure_secrets_loaded

            backends = ensure_secrets_loaded()
    except ImportError:
        return None
    for backend in backends:
        name = type(backend).__name__
        if name in _DATABASE_BACKENDS:
            return None
        try:
            found = backend.get_connection(conn_id=conn_id)
        except Exception:  # noqa: BLE001 - a backend that cannot answer does not shadow
            continue
        if found is not None:
            return f"the secrets backend {name}"
    return None


def shadow_error(conn_id: str, source: str) -> ConfigError:
    return ConfigError(
        f"Connection {conn_id!r} is defined by {source}, which Airflow reads before the "
        "metadata database, so a rotated refresh token written to the database would never "
        "be read again and the next run would need re-authorization. Nothing was spent. "
        f"Fix: remove it from {source} and keep the connection in Admin > Connections only "
        "(or use auth_mode 'ssa' / 'client_credentials', which have no refresh chain)."
    )


# ---------------------------------------------------------------------------- writers
class ConnectionWriter(Protocol):
    """Changes keys of a connection's extra in the metadata database (None deletes a key)."""

    def update_extra(self, conn_id: str, changes: dict[str, Any]) -> None: ...


class OrmWriter:
    """Writes the DB row directly: the CLI, the API server and `airflow dags test`."""

    def update_extra(self, conn_id: str, changes: dict[str, Any]) -> None:
        from sqlalchemy import select

        from airflow.models.connection import Connection
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.scalar(select(Connection).where(Connection.conn_id == conn_id)
                                 .with_for_update())
            if row is None:
                raise ConfigError(f"Connection {conn_id!r} has no row in the Airflow metadata "
                                  "database; create it in Admin > Connections first.")
            row.set_extra(json.dumps(_apply(json.loads(row.extra) if row.extra else {}, changes)))


@dataclass(frozen=True)
class AirflowApiSettings:
    """Where the Airflow REST API is and who aps-mirror logs in as (needs connection edit rights)."""

    url: str
    username: str
    password: str = field(repr=False)

    @classmethod
    def resolve(cls) -> AirflowApiSettings:
        """Env vars APS_MIRROR_AIRFLOW_API_URL/_USERNAME/_PASSWORD, else the connection
        `aps_mirror_airflow_api` (host = URL, login, password); URL defaults to Airflow's own."""
        url = os.environ.get("APS_MIRROR_AIRFLOW_API_URL")
        user = os.environ.get("APS_MIRROR_AIRFLOW_API_USERNAME")
        password = os.environ.get("APS_MIRROR_AIRFLOW_API_PASSWORD")
        if not (user and password):
            from aps_mirror.airflow_provider.connections import get_connection_fields

            api_conn_id = os.environ.get(API_CONN_ID_ENV, DEFAULT_API_CONN_ID)
            fields = get_connection_fields(api_conn_id)
            if fields is None or not fields.login or not fields.password:
                raise ConfigError(
                    "aps-mirror must save rotated refresh tokens through the Airflow REST API "
                    "(tasks cannot write connections otherwise) but has no credentials for it: "
                    f"create the connection {api_conn_id!r} (type http; host = the API server URL, "
                    "login/password = a user allowed to edit connections) or set "
                    "APS_MIRROR_AIRFLOW_API_USERNAME and APS_MIRROR_AIRFLOW_API_PASSWORD."
                )
            user, password = fields.login, fields.password
            url = url or (fields.host if fields.host and "://" in fields.host else None)
        return cls(url=(url or _default_api_url()).rstrip("/"), username=user, password=password)


def _default_api_url() -> str:
    from airflow.sdk.configuration import conf

    base = conf.get("api", "base_url", fallback="") or ""
    if base.startswith("http"):
        return base
    execution = conf.get("core", "execution_api_server_url", fallback="") or ""
    if execution:  # every worker knows where the execution API is: the same server
        return execution.rstrip("/").removesuffix("/execution")
    return "http://localhost:8080"


class RestWriter:
    """Writes through `PATCH /api/v2/connections/{id}`: what a task on a worker can do."""

    def __init__(self, settings: AirflowApiSettings | None = None, timeout: float = 20.0) -> None:
        self._settings = settings
        self._timeout = timeout
        self._session = requests.Session()
        self._jwt: str | None = None

    @property
    def settings(self) -> AirflowApiSettings:
        if self._settings is None:
            self._settings = AirflowApiSettings.resolve()
        return self._settings

    def update_extra(self, conn_id: str, changes: dict[str, Any]) -> None:
        url = f"{self.settings.url}/api/v2/connections/{conn_id}"
        for attempt in range(4):  # transient API trouble must not lose a rotated token
            try:
                current = self._call("GET", url)
                if current.status_code == 404:
                    raise ConfigError(f"Connection {conn_id!r} is not in the Airflow metadata "
                                      "database; create it in Admin > Connections first.")
                current.raise_for_status()
                body = current.json()
                # Masked values ('***') sent back are restored by the API server from the row.
                extra = _apply(json.loads(body.get("extra") or "{}"), changes)
                patched = self._call("PATCH", url, params={"update_mask": "extra"},
                                     json={"connection_id": conn_id, "conn_type": body["conn_type"],
                                           "extra": json.dumps(extra)})
                patched.raise_for_status()
                return
            except (requests.RequestException, ValueError) as exc:
                if attempt == 3:
                    raise AuthError(f"The Airflow REST API at {self.settings.url} did not save "
                                    f"connection {conn_id!r} ({type(exc).__name__}).") from None
                time.sleep(0.5 * 2 ** attempt)

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        for _ in range(2):
            if self._jwt is None:
                self._jwt = self._login()
            response = self._session.request(method, url, timeout=self._timeout,
                                             headers={"Authorization": f"Bearer {self._jwt}"}, **kwargs)
            if response.status_code != 401:
                if response.status_code == 403:
                    raise ConfigError(f"The Airflow user {self.settings.username!r} may not edit "
                                      "connections; give it that permission (or use another user).")
                return response
            self._jwt = None  # expired: log in again once
        return response

    def _login(self) -> str:
        from aps_mirror.airflow_provider.connections import mask

        response = self._session.post(f"{self.settings.url}/auth/token", timeout=self._timeout,
                                      json={"username": self.settings.username,
                                            "password": self.settings.password})
        if response.status_code in (401, 403):
            raise ConfigError(f"The Airflow API at {self.settings.url} refused the login of "
                              f"{self.settings.username!r}; fix the aps-mirror API credentials.")
        response.raise_for_status()
        token = response.json()["access_token"]
        mask(token)
        return token


def _apply(extra: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(extra)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def default_writer() -> ConnectionWriter:
    """REST inside tasks (ORM blocked) or when configured; the ORM everywhere else."""
    if in_task() or os.environ.get("APS_MIRROR_AIRFLOW_API_URL"):
        return RestWriter()
    return OrmWriter()


# ---------------------------------------------------------------------------- locks
def rotation_lock(conn_id: str, url: str | None = None) -> contextlib.AbstractContextManager[None]:
    """A lock shared by every process that may refresh this connection.

    Every process must pick the SAME lock, so the default is derived only from settings that
    tasks, the API server and the CLI all see alike: APS_MIRROR_LOCK_URL (postgresql://... or
    redis://...) wins; else the Celery broker when the executor is Celery on Redis; else a file
    lock, which serialises the processes of one machine (right for LocalExecutor; a warning
    says so under any other executor). The metadata database is NOT a default: inside a task
    Airflow replaces its URL with `airflow-db-not-allowed:///`, so tasks could never join a lock
    taken there by the API server (the connection's Test button) or the CLI.
    """
    url = url or os.environ.get(LOCK_URL_ENV) or deployment_redis_url()
    if url and url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres"):
        return _pg_lock(conn_id, url.replace("+psycopg2", "").replace("+asyncpg", ""))
    if url and url.startswith(("redis://", "rediss://")):
        return _redis_lock(conn_id, url)
    executor = _airflow_conf("core", "executor")
    if executor.rsplit(".", 1)[-1] in ("LocalExecutor", "SequentialExecutor", "DebugExecutor"):
        log.debug("Refreshes of connection %r are serialised by a file lock (%s: one machine).",
                  conn_id, executor)
    else:
        log.warning("No shared lock is configured for refreshing connection %r (set %s to a "
                    "postgresql:// or redis:// URL every worker can reach): refreshes are "
                    "serialised on this machine only.", conn_id, LOCK_URL_ENV)
    return _file_lock(conn_id)


def _airflow_conf(section: str, key: str) -> str:
    try:
        from airflow.sdk.configuration import conf
    except ImportError:
        return ""
    return conf.get(section, key, fallback="") or ""


def deployment_redis_url() -> str | None:
    """The Redis every process of a Celery-on-Redis deployment reaches (its broker), if any."""
    if "Celery" not in _airflow_conf("core", "executor"):
        return None  # the broker setting has a default even where no Redis exists
    broker = _airflow_conf("celery", "broker_url")
    return broker if broker.startswith(("redis://", "rediss://")) else None


def _lock_key(conn_id: str) -> int:
    return struct.unpack(">q", hashlib.sha256(f"aps-mirror/{conn_id}".encode()).digest()[:8])[0]


@contextlib.contextmanager
def _pg_lock(conn_id: str, dsn: str) -> Iterator[None]:
    import psycopg2

    conn = psycopg2.connect(dsn, connect_timeout=10, application_name="aps-mirror-token-lock")
    conn.autocommit = True
    key = _lock_key(conn_id)
    try:
        with conn.cursor() as cur:
            _wait_for(lambda: _pg_try(cur, key), conn_id)
        yield
    finally:
        conn.close()  # closing the session releases the advisory lock, as does a crash


def _pg_try(cur: Any, key: int) -> bool:
    cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
    return bool(cur.fetchone()[0])


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


@contextlib.contextmanager
def _redis_lock(conn_id: str, url: str) -> Iterator[None]:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10)
    name, me = f"aps-mirror:refresh-lock:{conn_id}", uuid.uuid4().hex
    try:
        _wait_for(lambda: bool(client.set(name, me, nx=True, px=REDIS_LEASE_MS)), conn_id)
        yield
    finally:
        with contextlib.suppress(Exception):
            client.eval(_RELEASE, 1, name, me)
        client.close()


_thread_locks: dict[str, threading.Lock] = {}


@contextlib.contextmanager
def _file_lock(conn_id: str) -> Iterator[None]:
    path = Path(tempfile.gettempdir()) / f"aps-mirror-refresh-{_lock_key(conn_id) & 0xFFFFFFFF:08x}.lock"
    with open(path, "a") as handle:
        _wait_for(lambda: _flock(handle), conn_id)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _flock(handle: Any) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait_for(acquire: Any, conn_id: str) -> None:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    delay = 0.02
    while not acquire():
        if time.monotonic() > deadline:
            raise AuthError(f"Another process has held the refresh lock of connection {conn_id!r} "
                            f"for over {LOCK_WAIT_SECONDS:.0f}s; it is probably stuck. Retry.")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


# ---------------------------------------------------------------------------- the store
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
        from aps_mirror.airflow_provider import connections

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
        from aps_mirror.airflow_provider import connections

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
        from aps_mirror.airflow_provider.connections import get_connection_fields

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
