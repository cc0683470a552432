"""The per-project manifest: which version of which item sits at which S3 key.

Kept in S3 next to the mirror (`{prefix}/_aps_mirror/manifests/...`), so the bucket alone
describes itself. A manifest is replaced whole in one PUT (atomic in S3) and only after the
copies it records have completed, so it never claims a file the mirror lacks.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from aps_mirror.errors import ConfigError
from aps_mirror.mirror.keys import safe_segment
from aps_mirror.mirror.walk import ProjectRef

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
META_DIR = "_aps_mirror"


@dataclass
class ManifestEntry:
    """What the mirror holds for one item (keyed by lineage id in the manifest)."""

    version_id: str
    version_number: int | None
    key: str
    size: int
    source_path: str
    sha1: str | None = None
    copied_at: str | None = None
    deleted_at: str | None = None  # no longer listed in Autodesk; the object is kept


@dataclass
class Manifest:
    hub_id: str
    project_id: str
    project_name: str
    items: dict[str, ManifestEntry] = field(default_factory=dict)
    updated_at: str | None = None

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT_VERSION,
            "hub_id": self.hub_id,
            "project_id": self.project_id,
            "project_name": self.project_name,
            "updated_at": self.updated_at,
            "items": {k: asdict(v) for k, v in sorted(self.items.items())},
        }
        return json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        try:
            body = json.loads(data)
            if body.get("format") != FORMAT_VERSION:
                raise ConfigError(
                    f"Manifest {where} has format {body.get('format')!r}; this aps-mirror reads "
                    f"format {FORMAT_VERSION}. Upgrade aps-mirror, or move the manifest away to "
                    "re-mirror the project from scratch."
                )
            items = {k: ManifestEntry(**v) for k, v in body["items"].items()}
            return cls(body["hub_id"], body["project_id"], body.get("project_name", ""),
                       items, body.get("updated_at"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"Manifest {where} is damaged ({type(exc).__name__}: {exc}). Nothing was changed; "
                "restore it from the bucket's versions, or delete it to re-mirror the project."
            ) from None


def meta_prefix(prefix: str) -> str:
    return "/".join([p for p in prefix.strip("/").split("/") if p] + [META_DIR])


class ManifestStore:
    """Loads and saves per-project manifests in the mirror's bucket."""

    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix

    def key_for(self, hub_id: str, project_id: str) -> str:
        return "/".join([meta_prefix(self.prefix), "manifests", safe_segment(hub_id),
                         safe_segment(project_id) + ".json"])

    def load(self, project: ProjectRef) -> Manifest:
        key = self.key_for(project.hub_id, project.project_id)
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            log.info("no manifest yet for %s: every file will be copied", project.label)
            return Manifest(project.hub_id, project.project_id, project.project_name)
        return Manifest.from_json(body, f"s3://{self.bucket}/{key}")

    def save(self, manifest: Manifest) -> None:
        manifest.updated_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        key = self.key_for(manifest.hub_id, manifest.project_id)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=manifest.to_json(),
                           ContentType="application/json")
