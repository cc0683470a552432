"""`verify` against a mirror the engine made (simulator over HTTP -> moto's S3 server): a clean
mirror is clean, and each fault injected is found in its own category and only there."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Callable

import pytest

from aps_mirror.catalog import reader
from aps_mirror.catalog.writer import CatalogWriter
from aps_mirror.errors import ConfigError
from aps_mirror.mirror.lease import MirrorLease
from aps_mirror.mirror.manifest import ManifestStore
from aps_mirror.mirror.verify import MirrorVerifier
from aps_mirror.mirror.verify_report import CATEGORIES, VerifyReport
from tests.mirror.test_engine import PREFIX, mirrored, run
from tests.mirror.test_selection import selected_by_default

DRONE = ("Drone*",)  # one small project: each test mirrors it afresh


def verify(s3, bucket, **options) -> VerifyReport:
    return MirrorVerifier(s3, bucket, PREFIX, **options).run()


def found(report: VerifyReport) -> dict[str, set[str]]:
    """Category -> the keys (or, without a key, the item ids) found there; empty ones left out."""
    return {c: {f.key or f.item_id for f in getattr(report, c)} for c in CATEGORIES if getattr(report, c)}


@dataclass
class Mirror:
    simulator: object
    aps: object
    s3: object
    bucket: str

    @property
    def entries(self) -> dict[str, dict]:
        return mirrored(self.s3, self.bucket)

    def entry(self, n: int = 0) -> tuple[str, dict]:
        """The n-th mirrored item (by id) with at least 2 bytes: (item id, manifest entry)."""
        return sorted((i, e) for i, e in self.entries.items() if e["size"] >= 2)[n]

    def root(self) -> str:
        """The project's root prefix, `{prefix}/{hub}/{project}/`."""
        return "/".join(next(iter(self.entries.values()))["key"].split("/")[:3]) + "/"

    def rewrite(self, key: str, change: Callable[[bytes], bytes]) -> None:
        """Replace an object's bytes, keeping its metadata (what a bad disk or a hand edit does)."""
        obj = self.s3.get_object(Bucket=self.bucket, Key=key)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=change(obj["Body"].read()), Metadata=obj["Metadata"])


@pytest.fixture
def mirror(simulator, aps, s3, bucket) -> Mirror:
    summary = run(aps, s3, bucket, project_filter=DRONE)
    assert summary.files_copied >= 5 and not summary.errors
    return Mirror(simulator, aps, s3, bucket)


def test_a_clean_mirror_is_clean_even_deep_and_against_autodesk(mirror):
    entries = mirror.entries
    report = verify(mirror.s3, mirror.bucket, client=mirror.aps, deep=True)
    assert report.clean and found(report) == {} and not report.errors and not report.notes
    assert report.objects_checked == report.objects_read == len(entries)
    assert report.bytes_read == sum(e["size"] for e in entries.values())
    assert [p.project_name for p in report.projects] == ["Drone Gimbal"]


def flip_first_byte(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:]


def delete(m: Mirror) -> str:
    key = m.entry()[1]["key"]
    m.s3.delete_object(Bucket=m.bucket, Key=key)
    return key


def grow(m: Mirror) -> str:
    key = m.entry()[1]["key"]
    m.rewrite(key, lambda data: data + b"!")
    return key


def relabel(m: Mirror) -> str:
    """The object names another item in its metadata (bytes and size unchanged)."""
    key, other = m.entry(0)[1]["key"], m.entry(1)[0]
    meta = m.s3.head_object(Bucket=m.bucket, Key=key)["Metadata"]
    m.s3.copy_object(Bucket=m.bucket, Key=key, CopySource={"Bucket": m.bucket, "Key": key},
                     Metadata={**meta, "aps-item-id": other}, MetadataDirective="REPLACE")
    return key


def add_orphan(m: Mirror) -> str:
    key = m.root() + "Project Files/left behind.txt"
    m.s3.put_object(Bucket=m.bucket, Key=key, Body=b"nobody references me")
    return key


def start_upload(m: Mirror) -> str:
    key = m.root() + "Project Files/half copied.rvt"
    m.s3.create_multipart_upload(Bucket=m.bucket, Key=key)
    return key


def new_version(m: Mirror) -> str:
    item_id, entry = m.entry()
    m.simulator.sim.add_version(item_id, size=4321)
    return entry["key"]


def new_file(m: Mirror) -> str:
    some = next(f for f in m.simulator.sim.iter_files() if f.project == "Drone Gimbal" and f.path)
    project_id = m.simulator.sim.project_id(some.project)
    return m.simulator.sim.add_file(project_id, m.simulator.sim.folder_id(project_id, some.path), "brand new.pdf",
                                    size=777)


FAULTS = [  # (inject, category, found only with --conn-id)
    (delete, "missing", False),
    (grow, "corrupt", False),
    (relabel, "corrupt", False),
    (add_orphan, "orphans", False),
    (start_upload, "stale_uploads", False),
    (new_version, "outdated", True),
    (new_file, "not_mirrored", True),
]


@pytest.mark.parametrize(("inject", "category", "needs_autodesk"), FAULTS, ids=lambda v: getattr(v, "__name__", v))
def test_each_fault_is_found_in_its_own_category_only(mirror, inject, category, needs_autodesk):
    expected = inject(mirror)
    report = verify(mirror.s3, mirror.bucket, client=mirror.aps)
    assert found(report) == {category: {expected}}, report.format_text()
    assert not report.clean and not report.errors
    if needs_autodesk:  # S3 alone cannot know what changed in Autodesk
        assert verify(mirror.s3, mirror.bucket).clean
    else:  # nor does Autodesk change what S3 alone finds
        assert found(verify(mirror.s3, mirror.bucket)) == {category: {expected}}


def test_bytes_altered_with_the_same_size_are_corrupt_only_when_reread(mirror):
    key = mirror.entry()[1]["key"]
    mirror.rewrite(key, flip_first_byte)
    assert verify(mirror.s3, mirror.bucket).clean, "size and metadata alone cannot see it"
    deep = verify(mirror.s3, mirror.bucket, deep=True)
    assert found(deep) == {"corrupt": {key}}
    assert "SHA-1" in deep.corrupt[0].why and "the manifest's" in deep.corrupt[0].why


def test_every_fault_at_once_each_in_its_category(mirror):
    item_id, altered = mirror.entry(2)
    mirror.rewrite(altered["key"], flip_first_byte)
    expected = {"missing": {delete(mirror)}, "orphans": {add_orphan(mirror)},
                "stale_uploads": {start_upload(mirror)}, "not_mirrored": {new_file(mirror)},
                "corrupt": {altered["key"], shrink(mirror, 3)}}
    outdated_item, outdated = mirror.entry(4)
    mirror.simulator.sim.add_version(outdated_item, size=99)
    expected["outdated"] = {outdated["key"]}
    report = verify(mirror.s3, mirror.bucket, client=mirror.aps, deep=True)
    assert found(report) == expected, report.format_text()
    data = report.to_dict()
    assert data["clean"] is False and data["objects_checked"] == len(mirror.entries)
    assert {c: {f["key"] or f["item_id"] for f in data[c]} for c in CATEGORIES if data[c]} == expected


def shrink(m: Mirror, n: int) -> str:
    key = m.entry(n)[1]["key"]
    m.rewrite(key, lambda data: data[:-1])
    return key


def test_deep_without_a_sha1_in_the_manifest_asks_autodesk(mirror):
    store = ManifestStore(mirror.s3, mirror.bucket, PREFIX)
    manifest = store.load_all()[0]
    item_id, entry = mirror.entry()
    manifest.items[item_id].sha1 = None  # e.g. adopted from a multipart object without one
    store.save(manifest)
    mirror.rewrite(entry["key"], flip_first_byte)
    alone = verify(mirror.s3, mirror.bucket, deep=True)
    # Nothing to compare with: said in a note, not guessed (size and metadata were right).
    assert found(alone) == {} and any(entry["key"] in note and "no SHA-1" in note for note in alone.notes)
    with_autodesk = verify(mirror.s3, mirror.bucket, client=mirror.aps, deep=True)
    assert found(with_autodesk) == {"corrupt": {entry["key"]}}
    assert "Autodesk's is " + mirror.simulator.sim.sha1(entry["version_id"]) in with_autodesk.corrupt[0].why


def test_sample_rereads_that_many_objects(mirror):
    report = verify(mirror.s3, mirror.bucket, sample=3, rng=random.Random(7))
    assert report.deep and report.objects_read == 3 and report.clean
    assert report.objects_checked == len(mirror.entries)
    with pytest.raises(ConfigError, match="--sample 0"):
        MirrorVerifier(mirror.s3, mirror.bucket, PREFIX, sample=0)


def test_kept_versions_are_checked_too(simulator, aps, s3, bucket):
    target = next(f for f in simulator.sim.iter_files() if f.project == "Drone Gimbal")
    simulator.sim.add_version(target.item_id, size=2048)
    run(aps, s3, bucket, project_filter=DRONE, versions="all")
    kept = [h["kept_key"] for h in mirrored(s3, bucket)[target.item_id]["history"] if h.get("kept_key")]
    assert kept and verify(s3, bucket, deep=True).clean
    s3.delete_object(Bucket=bucket, Key=kept[0])
    assert found(verify(s3, bucket)) == {"missing": {kept[0]}}


def test_files_the_selection_leaves_out_are_not_reported(simulator, aps, s3, bucket):
    # The default selection leaves the Plans of ACC projects out, the extensions the rest: the
    # mirror lacks them on purpose.
    summary = run(aps, s3, bucket, top_folders=(), extensions=("pdf", "dwg"))
    assert summary.files_excluded > 0 and len(selected_by_default(simulator.sim)) < len(list(simulator.sim.iter_files()))
    report = verify(s3, bucket, client=aps)
    assert report.clean, report.format_text()
    assert len(report.projects) == 3 and report.objects_checked == summary.files_copied


def test_an_object_journalled_for_removal_is_an_orphan_saying_so(mirror):
    store = ManifestStore(mirror.s3, mirror.bucket, PREFIX)
    manifest = store.load_all()[0]
    key = add_orphan(mirror)
    manifest.pending_deletes.append(key)  # a run died between its commit and the removal
    store.save(manifest)
    report = verify(mirror.s3, mirror.bucket)
    assert found(report) == {"orphans": {key}} and "the next sync removes it" in report.orphans[0].why


def test_no_mirror_at_the_prefix_is_a_usage_error(s3, bucket):
    with pytest.raises(ConfigError, match="no manifest"):
        verify(s3, bucket)


def test_the_verification_lands_in_the_catalog(mirror):
    key = delete(mirror)
    orphan = add_orphan(mirror)
    outside = f"{PREFIX}/not a project.bin"  # an upload under the prefix, in no project's root
    mirror.s3.create_multipart_upload(Bucket=mirror.bucket, Key=outside)
    report = verify(mirror.s3, mirror.bucket)
    written = CatalogWriter(mirror.s3, mirror.bucket, PREFIX).record_verification(report)
    assert written.startswith(f"{PREFIX}/_aps_mirror/catalog/verifications/run_date=")
    rows = reader.read_table(mirror.s3, mirror.bucket, PREFIX, "verifications").to_pylist()
    assert len(rows) == 2, "the project checked, and what lies outside every project"
    project, rest = sorted(rows, key=lambda r: r["project_id"] is None)
    assert {r["verification_id"] for r in rows} == {report.verification_id}
    assert project["project_name"] == "Drone Gimbal" and rest["project_id"] is None
    assert (project["clean"], project["missing"], project["orphans"], project["stale_uploads"]) == (False, 1, 1, 0)
    assert (rest["clean"], rest["stale_uploads"], rest["objects_checked"]) == (False, 1, 0)
    assert project["objects_checked"] == len(mirror.entries)  # the deleted one was checked too
    findings = json.loads(project["findings"])
    assert [f["key"] for f in findings["missing"]] == [key]
    assert [f["key"] for f in findings["orphans"]] == [orphan]
    assert [f["key"] for f in json.loads(rest["findings"])["stale_uploads"]] == [outside]
    assert project["run_date"].isoformat() == report.started_at[:10]


def test_a_clean_verification_is_one_clean_row(mirror):
    report = verify(mirror.s3, mirror.bucket, deep=True)
    CatalogWriter(mirror.s3, mirror.bucket, PREFIX).record_verification(report)
    [row] = reader.read_table(mirror.s3, mirror.bucket, PREFIX, "verifications").to_pylist()
    assert row["clean"] and row["deep"] and not row["against_autodesk"] and row["error_count"] == 0
    assert row["objects_read"] == len(mirror.entries) and row["bytes_read"] == report.bytes_read > 0
    assert all(row[c] == 0 for c in CATEGORIES)


def test_a_run_holding_the_lease_meanwhile_is_noted(mirror):
    with MirrorLease(mirror.s3, mirror.bucket, PREFIX, holder="night-run", command="aps-mirror sync").hold():
        report = verify(mirror.s3, mirror.bucket)
    assert report.clean, "a note, not a fault"
    assert len(report.notes) == 1 and "run night-run" in report.notes[0] and "verify again" in report.notes[0]
    assert not verify(mirror.s3, mirror.bucket).notes, "released: nothing to say"
