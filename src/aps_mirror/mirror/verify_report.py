"""What a verification found: findings by category, per project, as text and as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from aps_mirror.mirror.progress import human_bytes

# Faults, in the order they are reported. `outdated` and `not_mirrored` need Autodesk (--conn-id).
CATEGORIES = ("missing", "corrupt", "orphans", "outdated", "not_mirrored", "stale_uploads")


@dataclass(frozen=True)
class Finding:
    """One fault: the object (or upload) concerned, the item it holds, its path in Autodesk, why."""

    key: str | None
    item_id: str | None
    path: str | None
    why: str
    project_id: str | None = None  # None: it lies outside every project's root

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckedProject:
    """A project whose manifest was audited, and what its part of the audit read."""

    hub_id: str
    hub_name: str
    project_id: str
    project_name: str
    objects_checked: int = 0
    objects_read: int = 0  # re-read in full (--deep)
    bytes_read: int = 0


@dataclass
class ReportPart:
    """The findings of one project (or, `project` None, those that belong to no project, and
    what could not be checked): one row of the catalog's `verifications` table."""

    project: CheckedProject | None
    findings: dict[str, list[Finding]]
    errors: list[str]

    @property
    def clean(self) -> bool:
        return not self.errors and not any(self.findings.values())


@dataclass
class VerifyReport:
    verification_id: str
    bucket: str
    prefix: str
    started_at: str
    finished_at: str | None = None
    deep: bool = False
    sample: int | None = None  # --sample N: objects re-read at random; None: every object (deep)
    against_autodesk: bool = False
    objects_checked: int = 0
    objects_read: int = 0
    bytes_read: int = 0
    missing: list[Finding] = field(default_factory=list)
    corrupt: list[Finding] = field(default_factory=list)
    orphans: list[Finding] = field(default_factory=list)
    outdated: list[Finding] = field(default_factory=list)
    not_mirrored: list[Finding] = field(default_factory=list)
    stale_uploads: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what could not be checked: no proof either way
    notes: list[str] = field(default_factory=list)  # worth knowing, not a fault
    projects: list[CheckedProject] = field(default_factory=list)

    @property
    def faults(self) -> int:
        return sum(len(getattr(self, category)) for category in CATEGORIES)

    @property
    def clean(self) -> bool:
        """Nothing found, and everything could be checked."""
        return not self.faults and not self.errors

    def add(self, category: str, finding: Finding) -> None:
        getattr(self, category).append(finding)

    def sort(self) -> None:
        for category in CATEGORIES:
            getattr(self, category).sort(key=lambda f: (f.project_id or "", f.key or "", f.item_id or ""))

    def parts(self) -> list[ReportPart]:
        """One part per project checked, plus one for findings outside every project and for
        errors (also when no project was checked, so a run always has a part)."""
        parts = [ReportPart(p, {c: [f for f in getattr(self, c) if f.project_id == p.project_id]
                                for c in CATEGORIES}, []) for p in self.projects]
        known = {p.project_id for p in self.projects}
        rest = ReportPart(None, {c: [f for f in getattr(self, c) if f.project_id not in known]
                                 for c in CATEGORIES}, list(self.errors))
        if not parts or not rest.clean:
            parts.append(rest)
        return parts

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "verification_id": self.verification_id, "bucket": self.bucket, "prefix": self.prefix,
            "started_at": self.started_at, "finished_at": self.finished_at, "clean": self.clean,
            "deep": self.deep, "sample": self.sample, "against_autodesk": self.against_autodesk,
            "objects_checked": self.objects_checked, "objects_read": self.objects_read,
            "bytes_read": self.bytes_read, "projects": [asdict(p) for p in self.projects],
        }
        body.update({c: [f.to_dict() for f in getattr(self, c)] for c in CATEGORIES})
        body.update(errors=self.errors, notes=self.notes)
        return body

    def summary_line(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix.strip('/')}"
        read = f", {self.objects_read} re-read ({human_bytes(self.bytes_read)})" if self.deep else ""
        checked = f"{where}: {self.objects_checked} objects checked in {len(self.projects)} project(s){read}"
        if self.clean:
            return f"{checked}: clean"
        found = ", ".join(f"{len(getattr(self, c))} {c.replace('_', ' ')}" for c in CATEGORIES
                          if getattr(self, c))
        unchecked = f"{len(self.errors)} could not be checked" if self.errors else ""
        return f"{checked}: NOT CLEAN: " + "; ".join(text for text in (found, unchecked) if text)

    def format_text(self) -> str:
        lines = [self.summary_line()]
        for category in CATEGORIES:
            findings = getattr(self, category)
            if findings:
                lines.append(f"{category.replace('_', ' ')} ({len(findings)}):")
                lines += [f"  {_describe(f)}" for f in findings]
        for title, texts in (("could not be checked", self.errors), ("notes", self.notes)):
            if texts:
                lines.append(f"{title} ({len(texts)}):")
                lines += [f"  {text}" for text in texts]
        return "\n".join(lines)


def _describe(finding: Finding) -> str:
    where = finding.key or "(no object)"
    about = ", ".join(x for x in (finding.path, finding.item_id) if x)
    return f"{where}{f'  [{about}]' if about else ''}: {finding.why}"
