"""Which account a mirror prefix belongs to, and the key segment each hub and project keeps.

Kept at `{prefix}/_aps_mirror/mirror.json`:

    {"format": 1, "created_at": ..., "client_id": <the APS app that created it>,
     "hubs": {hub_id: {"name", "segment"}},
     "projects": {project_id: {"hub_id", "name", "segment"}}}

It lets a run refuse a prefix that holds another account's mirror, and it pins the key segment
of every hub and project: once recorded, a segment stays with its id for good, and a newcomer
never gets one that is taken. Which segment a newcomer gets (the collision rule) is the keys
module's business; this record only stores segments and says which are taken.

Written whole with conditional PUTs (If-None-Match for a new prefix, If-Match on the ETag read).
When another process wrote first (two tasks of a run each adding their project), `save` re-reads
and merges this record's changes into the newer one, so both land.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from botocore.exceptions import ClientError

from aps_mirror.errors import ApsMirrorError, ConfigError
from aps_mirror.mirror.keys import meta_prefix, safe_segment

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
Kind = Literal["hub", "project"]
# Someone else wrote mirror.json between our read and our write (NoSuchKey: deleted meanwhile).
CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"})
MAX_CONFLICTS = 10


class SegmentTaken(ApsMirrorError):
    """The segment wanted for a hub or project is recorded for another one: choose another."""

    def __init__(self, message: str, *, clashes: list[tuple[Kind, str]]) -> None:
        super().__init__(message)
        self.clashes = clashes  # (kind, id) whose assignment was refused


def record_key(prefix: str) -> str:
    return f"{meta_prefix(prefix)}/mirror.json"


class MirrorRecord:
    """mirror.json of one prefix, as read, plus this run's changes until `save`."""

    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self.key = record_key(prefix)
        self.where = f"s3://{bucket}/{prefix.strip('/')}".rstrip("/")
        self.created_at: str | None = None
        self.client_id: str | None = None
        self.hubs: dict[str, dict[str, str]] = {}  # hub id -> {name, segment}
        self.projects: dict[str, dict[str, str]] = {}  # project id -> {hub_id, name, segment}
        self.etag: str | None = None  # as read; None while the prefix has no record
        self._stored_header: tuple[str | None, str | None] = (None, None)  # (created_at, client_id) as read
        self._changed: dict[tuple[Kind, str], dict[str, str]] = {}  # assignments not saved yet
        self._claim: tuple[dict[str, str], bool] | None = None  # (visible hubs, allow other account)

    # -- reading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, s3: Any, bucket: str, prefix: str) -> MirrorRecord:
        """The prefix's record; an empty one (`exists` False) for a prefix that has none yet."""
        record = cls(s3, bucket, prefix)
        record._reload()
        return record

    @property
    def exists(self) -> bool:
        return self.etag is not None

    def _reload(self) -> None:
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise
            self.created_at, self.client_id, self.hubs, self.projects, self.etag = None, None, {}, {}, None
            self._stored_header = (None, None)
            return
        try:
            body = json.loads(answer["Body"].read())
            if body.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {body.get('format')!r}, expected {FORMAT_VERSION}")
            hubs = {str(k): _entry(v, {"name": str(v["name"]), "segment": str(v["segment"])})
                    for k, v in (body.get("hubs") or {}).items()}
            projects = {str(k): _entry(v, {"hub_id": str(v["hub_id"]), "name": str(v["name"]),
                                           "segment": str(v["segment"])})
                        for k, v in (body.get("projects") or {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"s3://{self.bucket}/{self.key} is damaged ({type(exc).__name__}: {exc}); restore it from "
                "the bucket's versions: it pins the keys of every hub and project of the mirror."
            ) from None
        self.created_at, self.client_id = body.get("created_at"), body.get("client_id")
        self.hubs, self.projects, self.etag = hubs, projects, answer["ETag"]
        self._stored_header = (self.created_at, self.client_id)

    # -- the account --------------------------------------------------------------------------
    def claim(self, visible_hub_ids: Iterable[str], client_id: str,
              allow_other_account: bool = False) -> None:
        """Check that this connection's account is the one the prefix mirrors, and note it.

        `visible_hub_ids` are the hubs the connection sees (a mapping of id to name gives better
        messages). Refuses with ConfigError when the prefix records hubs and none is visible,
        unless `allow_other_account`. Takes effect on disk with `save()`.
        """
        visible = dict(visible_hub_ids) if isinstance(visible_hub_ids, Mapping) else {
            hub_id: hub_id for hub_id in visible_hub_ids}
        self._check_account(visible, allow_other_account)
        self._claim = (visible, allow_other_account)
        if self.client_id is None:
            self.client_id = client_id
        elif self.client_id != client_id:
            log.info("%s was created by APS app %s; this run uses %s (same hubs)", self.where,
                     self.client_id, client_id)

    def _check_account(self, visible: dict[str, str], allow_other_account: bool) -> None:
        if not self.hubs or set(self.hubs) & set(visible):
            return
        recorded = ", ".join(sorted(h["name"] or hub_id for hub_id, h in self.hubs.items()))
        seen = ", ".join(sorted(name or hub_id for hub_id, name in visible.items())) or "no hub"
        if allow_other_account:
            log.warning("%s holds the mirror of hubs %s; mirroring %s beside it (--allow-other-account)",
                        self.where, recorded, seen)
            return
        raise ConfigError(f"{self.where} holds the mirror of hubs {recorded}; this connection sees {seen}. "
                          "Use another prefix, or pass --allow-other-account to mirror both here.")

    # -- segments -----------------------------------------------------------------------------
    def _entries(self, kind: Kind) -> dict[str, dict[str, str]]:
        if kind == "hub":
            return self.hubs
        if kind == "project":
            return self.projects
        raise ValueError(f"kind must be 'hub' or 'project', got {kind!r}")

    def segment_for(self, kind: Kind, id_: str) -> str | None:
        """The segment recorded for a hub or project; None for one never mirrored here."""
        entry = self._entries(kind).get(id_)
        return entry["segment"] if entry else None

    def former_segments(self, kind: Kind, id_: str) -> list[str]:
        """Segments a hub or project held before a rename moved it: still its own (its old
        objects are removed from there), and never given to another.

        What the file says is checked, since it widens where a project may delete: only a
        segment the key rules could have produced, and that no other hub (or project of the
        same hub) holds now."""
        entry = self._entries(kind).get(id_)
        if not entry or not entry.get("former"):
            return []
        others = {e["segment"] for other, e in self._entries(kind).items()
                  if other != id_ and (kind == "hub" or e["hub_id"] == entry.get("hub_id"))}
        kept = []
        for segment in entry.get("former", []):
            if segment and safe_segment(segment) == segment and segment not in others:
                kept.append(segment)
            else:
                log.warning("%s: ignoring former segment %r of %s %s: not one the key rules give, "
                            "or another's now", self.where, segment, kind, id_)
        return kept

    def held(self, kind: Kind, parent_id: str | None = None) -> dict[str, str]:
        """Id -> recorded segment: every hub's, or the projects' of hub `parent_id`."""
        return {id_: e["segment"] for id_, e in self._entries(kind).items()
                if kind == "hub" or e["hub_id"] == parent_id}

    def taken_segments(self, kind: Kind, parent_id: str | None = None) -> set[str]:
        """Segments recorded, current and former: every hub's, or the projects' of hub `parent_id`."""
        entries = [e for e in self._entries(kind).values() if kind == "hub" or e["hub_id"] == parent_id]
        return {e["segment"] for e in entries} | {s for e in entries for s in e.get("former", [])}

    def assign(self, kind: Kind, id_: str, segment: str, *, name: str, hub_id: str | None = None) -> str:
        """Record the segment a hub or project holds now (the keys module's collision rule chose
        it) and return it. A segment it held before goes to its `former` list.

        SegmentTaken when another id of the same parent holds or held `segment`.
        Projects need their `hub_id`. Takes effect on disk with `save()`.
        """
        if kind == "project" and not hub_id:
            raise ValueError("a project's segment is assigned under its hub: pass hub_id")
        entries = self._entries(kind)
        known = entries.get(id_)
        if self._held_by_another(kind, id_, segment, hub_id):
            raise SegmentTaken(f"{self.where}: segment {segment!r} already belongs to another {kind}; "
                               "choose another one.", clashes=[(kind, id_)])
        former = list(known.get("former", [])) if known else []
        if known and known["segment"] != segment and known["segment"] not in former:
            former.append(known["segment"])
        entry = {"name": name, "segment": segment} | ({"hub_id": hub_id} if kind == "project" else {}) \
            | ({"former": [f for f in former if f != segment]} if former else {})
        if entry != known:
            entries[id_] = entry
            self._changed[(kind, id_)] = entry
        return segment

    def _held_by_another(self, kind: Kind, id_: str, segment: str, hub_id: str | None) -> bool:
        """Whether another id of the parent holds `segment`, or held it (a former segment
        `former_segments` accepts). Two passes over the parent's entries, whatever their count:
        an account of thousands of projects assigns them all each run."""
        peers = {other: e for other, e in self._entries(kind).items() if kind == "hub" or e["hub_id"] == hub_id}
        holders = {other for other, e in peers.items() if e["segment"] == segment}
        if holders - {id_}:
            return True
        # A former segment counts only where former_segments keeps it: one the key rules give,
        # that no other entry holds now.
        return safe_segment(segment) == segment and any(
            segment in e.get("former", ()) and holders <= {other} for other, e in peers.items() if other != id_)

    # -- writing ------------------------------------------------------------------------------
    def save(self) -> None:
        """Write this run's changes; merge them into a newer record if another process wrote first.

        On a merge, a recorded segment wins over this run's: an id assigned meanwhile keeps the
        other writer's segment, and a segment the other writer gave to another id is refused.
        Everything else is saved, then SegmentTaken names the refused assignments (the record then
        holds the merged state: `assign` them again and `save`).
        """
        clashes: list[tuple[Kind, str]] = []
        for _ in range(MAX_CONFLICTS):
            if self.exists and not self._changed and self._stored_header == (self.created_at, self.client_id):
                break  # nothing to write
            if self.created_at is None:
                self.created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            condition = {"IfMatch": self.etag} if self.etag else {"IfNoneMatch": "*"}
            try:
                answer = self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=self._to_json(),
                                            ContentType="application/json", **condition)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in CONFLICT_CODES:
                    raise
                time.sleep(random.uniform(0.01, 0.1))  # desynchronise the writers
                clashes += self._merge_into_latest()
                continue
            self.etag = answer["ETag"]
            self._changed.clear()
            self._stored_header = (self.created_at, self.client_id)
            break
        else:
            raise ApsMirrorError(f"s3://{self.bucket}/{self.key} kept changing under {MAX_CONFLICTS} "
                                 "attempts to update it; another run is writing it. Try again in a minute.")
        if clashes:
            names = ", ".join(f"{kind} {id_}" for kind, id_ in clashes)
            raise SegmentTaken(f"{self.where}: another process recorded the segments wanted for {names} "
                               "meanwhile; assign them again.", clashes=clashes)

    def _merge_into_latest(self) -> list[tuple[Kind, str]]:
        """Re-read the record and re-apply this run's changes to it; return the refused ones."""
        changed, claim = dict(self._changed), self._claim
        created_at, client_id = self.created_at, self.client_id
        self._reload()
        if claim is not None:
            self._check_account(*claim)
        self.created_at = self.created_at or created_at
        self.client_id = self.client_id or client_id
        self._changed.clear()
        refused: list[tuple[Kind, str]] = []
        for (kind, id_), entry in changed.items():
            theirs = self.segment_for(kind, id_)
            if theirs is not None and theirs != entry["segment"] and theirs not in entry.get("former", []):
                refused.append((kind, id_))  # the other writer moved it: decide again
                log.info("%s: %s %s was given segment %r by another process meanwhile (not %r)",
                         self.where, kind, id_, theirs, entry["segment"])
                continue
            try:
                self.assign(kind, id_, entry["segment"], name=entry["name"], hub_id=entry.get("hub_id"))
            except SegmentTaken:
                refused.append((kind, id_))
        return refused

    def _to_json(self) -> bytes:
        body = {"format": FORMAT_VERSION, "created_at": self.created_at, "client_id": self.client_id,
                "hubs": dict(sorted(self.hubs.items())), "projects": dict(sorted(self.projects.items()))}
        return json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")


def _entry(stored: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """A hub's or project's entry as read, with the segments a rename moved it from."""
    former = [str(segment) for segment in stored.get("former") or []]
    return fields | ({"former": former} if former else {})
