"""One refresh at a time per connection, across every process that may refresh it:
a PostgreSQL advisory lock, a Redis lease, or a file lock on one machine."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import struct
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from aps_mirror.errors import AuthError
from aps_mirror.extras import import_extra

log = logging.getLogger(__name__)

LOCK_URL_ENV = "APS_MIRROR_LOCK_URL"
LOCK_WAIT_SECONDS = 120.0  # a refresh plus its persistence takes well under a second
REDIS_LEASE_MS = 60_000  # a Redis holder that died frees the lock after this long


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
        from aps_mirror.airflow_provider.compat import airflow_conf
    except ImportError:  # no Airflow here
        return ""
    return airflow_conf().get(section, key, fallback="") or ""


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
    psycopg2 = import_extra("psycopg2", extra="postgres", feature="A refresh lock shared through PostgreSQL")

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
    redis = import_extra("redis", extra="redis", feature="A refresh lock shared through Redis")

    client = redis.Redis.from_url(url, socket_timeout=10)
    name, me = f"aps-mirror:refresh-lock:{conn_id}", uuid.uuid4().hex
    try:
        _wait_for(lambda: bool(client.set(name, me, nx=True, px=REDIS_LEASE_MS)), conn_id)
        yield
    finally:
        with contextlib.suppress(Exception):
            client.eval(_RELEASE, 1, name, me)
        client.close()


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
