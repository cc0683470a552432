"""One lock per mirror prefix: a lease in S3 that only conditional writes change.

The lease is one small JSON object, `{prefix}/_aps_mirror/lock.json`. It is created with
`If-None-Match: *` and renewed, taken over or released with `If-Match` on the ETag it was read
with, so of two runs racing for it exactly one write lands; the loser (412 PreconditionFailed or
409 ConditionalRequestConflict) re-reads and decides again. Nothing ever deletes it (conditional
deletes are not supported by every S3): release writes a `released` state, and a released or
expired lease is taken with `If-Match` on the ETag read.

Usage (the engine, the CLI and the DAG):

    lease = MirrorLease(s3, bucket, prefix, holder=run_id, command="aps-mirror sync")
    with lease.hold(wait_seconds=300):
        ...
        lease.check()  # at commit points: raises MirrorLocked if another run took the lease

The holder id is re-entrant: the processes of ONE run (an Airflow DAG run's mapped tasks) use
the same holder id (the DAG run id) and share the lease. Each process is a *session* of the
lease with its own expiry; releasing drops only that session, and the lease is released when
its last session goes, so a task that finishes early does not unlock the mirror under its
siblings. A session that dies simply expires.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterator

from botocore.exceptions import ClientError

from aps_mirror.errors import ApsMirrorError, ConfigError, s3_write
from aps_mirror.mirror.keys import meta_prefix

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
DEFAULT_TTL = 600.0  # seconds; the heartbeat renews every ttl/3, so two missed beats are tolerated
HELD, RELEASED = "held", "released"
# Someone else wrote the lease between our read and our write (NoSuchKey: it was deleted by hand).
CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"})
MAX_CONFLICTS = 20  # re-reads per operation; each loser of a race needs one, so N racers need < N


class MirrorLocked(ApsMirrorError):
    """Another run holds the mirror prefix's lease (or took it from this run)."""

    def __init__(self, message: str, *, lease: LeaseState | None = None) -> None:
        super().__init__(message)
        self.lease = lease


def lease_key(prefix: str) -> str:
    return f"{meta_prefix(prefix)}/lock.json"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


@dataclass(frozen=True)
class LeaseState:
    """What lock.json says. Times are UTC ISO strings on S3's clock (see ServerClock)."""

    holder: str  # the run id; the last holder once released
    description: str  # who took it: command or DAG run, host, pid
    state: str  # HELD or RELEASED
    acquired_at: str
    renewed_at: str
    expires_at: str
    # session id -> {"description", "expires_at"}: the processes of the holder's run
    sessions: dict[str, dict[str, str]] = field(default_factory=dict)
    released_at: str | None = None
    released_by: str | None = None  # set when an operator broke the lease

    def live_at(self, now: datetime) -> bool:
        return self.state == HELD and _parse(self.expires_at) > now

    def to_json(self) -> bytes:
        body = {"format": FORMAT_VERSION, "holder": self.holder, "description": self.description,
                "state": self.state, "acquired_at": self.acquired_at, "renewed_at": self.renewed_at,
                "expires_at": self.expires_at, "sessions": self.sessions,
                "released_at": self.released_at, "released_by": self.released_by}
        return json.dumps(body, indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, where: str) -> LeaseState:
        try:
            body = json.loads(data)
            if body.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {body.get('format')!r}, expected {FORMAT_VERSION}")
            state = cls(holder=body["holder"], description=body.get("description", ""),
                        state=body["state"], acquired_at=body["acquired_at"],
                        renewed_at=body["renewed_at"], expires_at=body["expires_at"],
                        sessions=dict(body.get("sessions") or {}),
                        released_at=body.get("released_at"), released_by=body.get("released_by"))
            _parse(state.expires_at)
            return state
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"The mirror's lock {where} is damaged ({type(exc).__name__}: {exc}). If no run is "
                "working on this mirror, pass --break-lock to replace it."
            ) from None

    def with_sessions(self, sessions: dict[str, dict[str, str]], now: datetime) -> LeaseState:
        """This lease held by its sessions still alive at `now` (released when none is)."""
        alive = {sid: s for sid, s in sessions.items() if _parse(s["expires_at"]) > now}
        if not alive:
            return replace(self, state=RELEASED, sessions={}, expires_at=_iso(now),
                           released_at=_iso(now), released_by=None)
        return replace(self, state=HELD, sessions=alive, renewed_at=_iso(now),
                       expires_at=max((s["expires_at"] for s in alive.values()), key=_parse))


class ServerClock:
    """S3's time, estimated from the `Date` header of its answers.

    Leases are compared across hosts. Writing and comparing times on S3's clock, the one every
    host sees, keeps a host whose own clock is off from taking a live lease (or from believing in
    an expired one). A Date has one-second resolution, so each answer only bounds the offset
    between S3's clock and ours; intersecting the bounds narrows it. An empty intersection means
    our clock jumped: start again from the latest answer. Without Date headers: local UTC time,
    and then hosts must keep their clocks within a fraction of the ttl (NTP does).
    """

    def __init__(self) -> None:
        self._bounds: tuple[float, float] | None = None
        self._lock = threading.Lock()

    def observe(self, metadata: dict[str, Any], sent: float, received: float) -> None:
        date = (metadata.get("HTTPHeaders") or {}).get("date")
        try:
            server = parsedate_to_datetime(date).timestamp() if date else None
        except (TypeError, ValueError):
            server = None
        if server is None:
            return
        # S3 stamped a time in [server, server + 1) at some local moment in [sent, received].
        low, high = server - received, server + 1 - sent
        with self._lock:
            if self._bounds and low <= self._bounds[1] and high >= self._bounds[0]:
                low, high = max(low, self._bounds[0]), min(high, self._bounds[1])
            self._bounds = (low, high)

    def now(self) -> datetime:
        with self._lock:
            offset = sum(self._bounds) / 2 if self._bounds else 0.0
        return datetime.fromtimestamp(time.time() + offset, timezone.utc)


_clocks: dict[str, ServerClock] = {}
_clocks_lock = threading.Lock()


def clock_for(s3: Any) -> ServerClock:
    """One clock per S3 endpoint in this process, so every lease of a process agrees on the time."""
    endpoint = getattr(getattr(s3, "meta", None), "endpoint_url", None) or ""
    with _clocks_lock:
        return _clocks.setdefault(endpoint, ServerClock())


def _all_dead_here(lease: LeaseState) -> bool:
    """Whether every session of a lease is a process of this host that no longer exists (a run
    killed here: its lease need not be waited out). PIDs are reused only after the kernel has
    cycled through its whole range, far slower than a lease's ttl."""
    sessions = list(lease.sessions.values())
    if not sessions or any(s.get("host") != socket.gethostname() or not str(s.get("pid", "")).isdigit()
                           for s in sessions):
        return False
    for session in sessions:
        try:
            os.kill(int(session["pid"]), 0)
        except ProcessLookupError:
            continue
        except PermissionError:  # alive, another user's
            return False
        return False
    log.info("the lease of run %s is held only by processes of this host that are gone (%s)",
             lease.holder, ", ".join(s["pid"] for s in sessions))
    return True


def describe(command: str) -> str:
    """A human description of this process for the lease: what runs, where."""
    return f"{command} on {socket.gethostname()}, pid {os.getpid()}"


class MirrorLease:
    """This process's hold on the lease of one mirror prefix.

    `acquire`, `renew` and `release` each read the lease, decide, and write it conditionally,
    re-reading when another writer got there first. `hold()` wraps them with a heartbeat thread.
    """

    def __init__(self, s3: Any, bucket: str, prefix: str, *, holder: str, command: str = "aps-mirror",
                 ttl: float = DEFAULT_TTL, clock: ServerClock | None = None) -> None:
        if ttl <= 0:
            raise ValueError(f"lease ttl must be positive, got {ttl!r}")
        self.s3 = s3
        self.bucket = bucket
        self.key = lease_key(prefix)
        self.where = f"s3://{bucket}/{prefix.strip('/')}".rstrip("/")
        self.holder = holder
        self.description = describe(command)
        self.ttl = ttl
        self.clock = clock or clock_for(s3)
        self.session = uuid.uuid4().hex[:12]
        self.lost_to: LeaseState | None = None  # the lease as a renewal found it taken
        self._lost_message = ""
        self._lost = threading.Event()
        self._held = False

    # -- the public operations ----------------------------------------------------------------
    @property
    def lost(self) -> bool:
        """True once a renewal found another holder (or the lease released by --break-lock)."""
        return self._lost.is_set()

    def acquire(self, wait_seconds: float = 0.0) -> LeaseState:
        """Take the lease, or join it if this holder already has it (that renews it).

        While another holder's lease is live, poll with backoff (bounded by the time it expires)
        for up to `wait_seconds`, then raise MirrorLocked naming the holder.
        """
        deadline = time.monotonic() + max(0.0, wait_seconds)
        pause = 0.2
        while True:
            current = self._update(self._take_or_join)
            if current.holder == self.holder and current.state == HELD and self.session in current.sessions:
                self._held = True
                self._lost.clear()
                self.lost_to, self._lost_message = None, ""
                log.info("%s: lease taken by run %s (%s) until %s", self.where, self.holder,
                         self.description, current.expires_at)
                return current
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MirrorLocked(self._locked_message(current), lease=current)
            until_expiry = (_parse(current.expires_at) - self.clock.now()).total_seconds()
            wait = max(0.05, min(pause, remaining, until_expiry + 0.05))
            log.info("%s is locked by run %s until %s; waiting %.1f s", self.where, current.holder,
                     current.expires_at, wait)
            time.sleep(wait)
            pause = min(pause * 2, 15.0)

    def renew(self) -> LeaseState:
        """Push this session's expiry a ttl ahead; raise MirrorLocked if the lease was lost."""
        current = self._update(self._renew_ours)
        if not self._ours(current):
            self._mark_lost(self._taken_message(current), current)
            self.check()
        return current

    def release(self) -> None:
        """Drop this session; the lease is released when no session of the run is left.

        Only if we still hold it: a lease another run took is left alone.
        """
        if not self._held:
            return
        self._held = False
        current = self._update(self._drop_ours)
        if current is None or current.holder != self.holder:
            log.warning("%s: not releasing the lease: run %s holds it now", self.where,
                        current.holder if current else "(none: lock.json is gone)")
        elif current.state == RELEASED:
            log.info("%s: lease released by run %s", self.where, self.holder)

    def check(self) -> None:
        """Raise MirrorLocked if the heartbeat found the lease taken: stop before writing more."""
        if self.lost:
            raise MirrorLocked(self._lost_message, lease=self.lost_to)

    def break_lock(self) -> LeaseState | None:
        """Force-release the lease, whoever holds it (an operator's --break-lock for a dead run).

        Returns the lease as it was (None if there was none, or it was not held); logs whom it broke.
        A live holder's heartbeat then finds it released and stops its run at the next check().
        """
        broken: list[LeaseState] = []

        def release_anyone(current: LeaseState | None, now: datetime) -> LeaseState | None:
            if current is None or current.state == RELEASED:
                broken.clear()
                return None
            broken[:] = [current]
            return replace(current, state=RELEASED, sessions={}, expires_at=_iso(now),
                           released_at=_iso(now), released_by=f"{self.holder} ({self.description})")

        stamp = _iso(self.clock.now())
        unreadable = LeaseState(holder="(unknown: lock.json is damaged)", description="unreadable",
                                state=HELD, acquired_at=stamp, renewed_at=stamp, expires_at=stamp)
        self._update(release_anyone, damaged_as=unreadable)
        if broken:
            was = broken[0]
            log.warning("%s: broke the lease of run %s (%s), held since %s until %s", self.where,
                        was.holder, was.description, was.acquired_at, was.expires_at)
            return was
        log.info("%s: no lease to break", self.where)
        return None

    def read(self) -> LeaseState | None:
        """The lease as stored now (None if this prefix never had one)."""
        return self._read()[0]

    @contextmanager
    def hold(self, wait_seconds: float = 0.0) -> Iterator[MirrorLease]:
        """Acquire, renew every ttl/3 on a daemon thread while the block runs, release on exit."""
        self.acquire(wait_seconds)
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(stop,), daemon=True,
                                name=f"lease-heartbeat-{self.session}")
        beat.start()
        try:
            yield self
        finally:
            stop.set()
            beat.join(timeout=self.ttl)
            if self.lost:
                log.warning("%s", self._lost_message)
            else:
                try:
                    self.release()
                except Exception as exc:  # noqa: BLE001 - never hide the block's own outcome
                    log.warning("%s: could not release the lease (%s); it expires by itself within %.0f s",
                                self.where, exc, self.ttl)

    # -- deciding -----------------------------------------------------------------------------
    def _ours(self, current: LeaseState | None) -> bool:
        return current is not None and current.state == HELD and current.holder == self.holder

    def _my_session(self, now: datetime) -> dict[str, str]:
        return {"description": self.description, "expires_at": _iso(now + timedelta(seconds=self.ttl)),
                "host": socket.gethostname(), "pid": str(os.getpid())}

    def _take_or_join(self, current: LeaseState | None, now: datetime) -> LeaseState | None:
        if self._ours(current):  # re-entrant: our run holds it (maybe through another process)
            return current.with_sessions({**current.sessions, self.session: self._my_session(now)}, now)
        if current is not None and current.live_at(now) and not _all_dead_here(current):
            return None  # another run's live lease: wait or refuse
        stamp = _iso(now)
        fresh = LeaseState(holder=self.holder, description=self.description, state=HELD,
                           acquired_at=stamp, renewed_at=stamp, expires_at=stamp)
        if current is not None:
            log.info("%s: taking the lease run %s left %s at %s", self.where, current.holder,
                     "released" if current.state == RELEASED else "expired", current.expires_at)
        return fresh.with_sessions({self.session: self._my_session(now)}, now)

    def _renew_ours(self, current: LeaseState | None, now: datetime) -> LeaseState | None:
        # Our run's lease, even past its expiry, is still ours: nobody else wrote it meanwhile.
        if not self._ours(current):
            return None
        return current.with_sessions({**current.sessions, self.session: self._my_session(now)}, now)

    def _drop_ours(self, current: LeaseState | None, now: datetime) -> LeaseState | None:
        if not self._ours(current) or self.session not in current.sessions:
            return None
        return current.with_sessions({s: v for s, v in current.sessions.items() if s != self.session}, now)

    def _heartbeat(self, stop: threading.Event) -> None:
        interval = self.ttl / 3
        expires = time.monotonic() + self.ttl
        while not stop.wait(interval):
            try:
                self.renew()
                expires = time.monotonic() + self.ttl
            except MirrorLocked:
                return  # renew() flagged it
            except Exception as exc:  # noqa: BLE001 - S3 unreachable: keep trying until expiry
                if time.monotonic() >= expires:
                    self._mark_lost(
                        f"Run {self.holder} lost its lock on {self.where}: S3 could not be reached to "
                        f"renew it before it expired ({type(exc).__name__}), so another run may have "
                        "started. Stopped; run again.", None)
                    return
                log.warning("%s: lease renewal failed, retrying in %.0f s: %s", self.where, interval, exc)

    # -- reading and writing ------------------------------------------------------------------
    def _update(self, change: Callable[[LeaseState | None, datetime], LeaseState | None], *,
                damaged_as: LeaseState | None = None) -> LeaseState | None:
        """Read, let `change` decide, write conditionally; re-read when someone else wrote first.

        Returns the lease as it stands after: what we wrote, or what we read if `change` declined.
        An unreadable lock.json raises ConfigError, unless `damaged_as` stands in for it.
        """
        for _ in range(MAX_CONFLICTS):
            try:
                current, etag = self._read()
            except ConfigError:
                if damaged_as is None:
                    raise
                current, etag = damaged_as, self._etag()
            wanted = change(current, self.clock.now())
            if wanted is None:
                return current
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                with s3_write(self.bucket, self.key):  # the run's first write: read-only keys stop here
                    self._call(self.s3.put_object, Bucket=self.bucket, Key=self.key, Body=wanted.to_json(),
                               ContentType="application/json", **condition)
                return wanted
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in CONFLICT_CODES:
                    raise
            time.sleep(random.uniform(0.01, 0.1))  # desynchronise the racers
        # Not MirrorLocked: contention is no proof of another holder (the heartbeat retries it).
        raise ApsMirrorError(f"{self.where}: the mirror's lock kept changing under {MAX_CONFLICTS} attempts "
                             "to update it; other processes are contending for it. Try again in a minute.")

    def _read(self) -> tuple[LeaseState | None, str | None]:
        try:
            answer = self._call(self.s3.get_object, Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None, None
            raise
        where = f"s3://{self.bucket}/{self.key}"
        return LeaseState.from_json(answer["Body"].read(), where), answer["ETag"]

    def _etag(self) -> str | None:
        try:
            return self._call(self.s3.head_object, Bucket=self.bucket, Key=self.key)["ETag"]
        except ClientError:
            return None

    def _call(self, operation: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        """One S3 call, its Date header fed to the clock (errors carry one too)."""
        sent = time.time()
        try:
            answer = operation(**kwargs)
        except ClientError as exc:
            self.clock.observe(exc.response.get("ResponseMetadata", {}), sent, time.time())
            raise
        self.clock.observe(answer.get("ResponseMetadata", {}), sent, time.time())
        return answer

    # -- messages -----------------------------------------------------------------------------
    def _locked_message(self, lease: LeaseState) -> str:
        return (f"{self.where} is being mirrored by run {lease.holder} ({lease.description}) since "
                f"{lease.acquired_at}. Wait for it to finish and try again; if that run is dead, its "
                f"lease expires at {lease.expires_at}, or pass --break-lock to take over now.")

    def _mark_lost(self, message: str, lease: LeaseState | None) -> None:
        self.lost_to, self._lost_message = lease, message
        self._lost.set()
        log.error("%s", message)

    def _taken_message(self, lease: LeaseState | None) -> str:
        if lease is None:
            return (f"Run {self.holder} lost its lock on {self.where}: its lock.json was deleted. "
                    "Stopped; run again once nothing else mirrors it.")
        if lease.state == RELEASED:
            return (f"Run {self.holder} lost its lock on {self.where}: {lease.released_by or 'someone'} "
                    f"broke it at {lease.released_at}. Stopped; run again once nothing else mirrors it.")
        return (f"Run {self.holder} lost its lock on {self.where}: run {lease.holder} "
                f"({lease.description}) took it at {lease.acquired_at}. Stopped so as not to interfere; "
                "run again after that run.")
