"""The engine through the `Source` protocol alone: a second source (an in-memory tree, see
memory_source.py) is planned, transferred, renamed, deleted and versioned like Autodesk Docs,
into moto's S3 server, and both sources share one mirror without touching each other's keys.
"""

from __future__ import annotations

import json

import pytest

from aps_mirror.catalog import reader
from aps_mirror.catalog.records import EventAction
from aps_mirror.catalog.writer import CatalogWriter
from aps_mirror.mirror.engine import VERSIONS_DIR, MirrorConfig, MirrorEngine, RunSummary
from aps_mirror.mirror.keys import VAULT_ROOT
from aps_mirror.mirror.plan import DeleteLimit, DeletePolicy
from aps_mirror.mirror.sources import Source
from aps_mirror.mirror.sources.docs import DocsSource
from tests.mirror.memory_source import MemorySource
from tests.mirror.test_engine import PREFIX, mirrored, object_keys
from tests.mirror.test_key_space import assert_keys_distinct
from tests.mirror.test_run_records import RecordingSink

DRAWINGS = ("Designs", "Drawings")


@pytest.fixture
def memory() -> MemorySource:
    source = MemorySource()
    store = source.add_store("Engineering")
    source.add_file(store, DRAWINGS, "bracket.dwg", b"bracket v1" * 300)
    source.add_file(store, DRAWINGS, "plate.dwg", b"plate v1" * 500)
    source.add_file(store, ("Designs",), "assembly.iam", b"assembly" * 2000)
    source.add_file(store, ("Designs", "Parts"), "bolt.ipt", b"")
    return source


def run(sources, s3, bucket, catalog=None, **config) -> RunSummary:
    engine = MirrorEngine(sources, s3, MirrorConfig(bucket=bucket, prefix=PREFIX, **config), catalog=catalog)
    return RunSummary.combine(engine.mirror_projects(engine.list_projects()))


def file_named(memory: MemorySource, name: str) -> str:
    return next(f.id for f in memory.files.values() if f.name == name)


def assert_exact_memory_mirror(memory: MemorySource, s3, bucket) -> dict[str, dict]:
    """Every file of the memory source is mirrored at its tip, byte for byte; returns the entries."""
    entries = {i: e for i, e in mirrored(s3, bucket).items() if i in memory.files or i.startswith("file-")}
    live = {i: e for i, e in entries.items() if not e["deleted_at"]}
    assert set(live) == set(memory.files)
    for item_id, item in memory.files.items():
        entry = live[item_id]
        assert entry["version_id"] == item.version_ids[-1] and entry["version_number"] == len(item.contents)
        assert entry["key"].startswith(f"{PREFIX}/{VAULT_ROOT}/Engineering/")
        obj = s3.get_object(Bucket=bucket, Key=entry["key"])
        assert obj["Body"].read() == item.contents[-1], entry["key"]
        assert obj["Metadata"]["aps-item-id"] == item_id
    return entries


def test_the_docs_source_and_a_test_source_keep_the_protocol():
    assert isinstance(MemorySource(), Source)
    assert isinstance(DocsSource(client=None), Source)  # type: ignore[arg-type]


def test_a_second_source_is_planned_and_copied_exactly_then_skipped(memory, s3, bucket):
    catalog = RecordingSink()
    first = run(memory, s3, bucket, catalog)
    assert (first.files_listed, first.files_copied, first.files_skipped, first.errors) == (4, 4, 0, [])
    assert first.bytes_copied == sum(len(f.contents[-1]) for f in memory.files.values())
    entries = assert_exact_memory_mirror(memory, s3, bucket)
    assert {e["source_path"] for e in entries.values()} == {
        "Designs/Drawings/bracket.dwg", "Designs/Drawings/plate.dwg", "Designs/assembly.iam",
        "Designs/Parts/bolt.ipt"}
    assert [r.source for r in catalog.runs] == ["memory"] and catalog.runs[0].status == "success"
    assert catalog.runs[0].api_calls > 0, "the source's own requests are counted"
    assert {e.action for e in catalog.events} == {EventAction.COPIED}

    reads = sum(memory.downloads.values())
    again = run(memory, s3, bucket)
    assert (again.files_copied, again.files_renamed, again.files_skipped) == (0, 0, 4)
    assert sum(memory.downloads.values()) == reads, "nothing read again"


def test_a_new_version_is_read_once_and_a_rename_and_a_move_are_copies_inside_s3(memory, s3, bucket):
    run(memory, s3, bucket)
    store = next(iter(memory.stores))
    before = mirrored(s3, bucket)
    bracket, plate, assembly = (file_named(memory, n) for n in ("bracket.dwg", "plate.dwg", "assembly.iam"))
    memory.add_version(bracket, b"bracket v2" * 400)
    memory.rename(plate, "plate (old).dwg")
    memory.move(assembly, store, ("Archive",))
    reads = sum(memory.downloads.values())
    catalog = RecordingSink()
    summary = run(memory, s3, bucket, catalog)
    assert (summary.files_copied, summary.files_renamed, summary.files_skipped) == (1, 2, 1)
    assert sum(memory.downloads.values()) == reads + 1, "only the new version is read"
    after = assert_exact_memory_mirror(memory, s3, bucket)
    assert after[plate]["key"].endswith("/Designs/Drawings/plate (old).dwg")
    assert after[assembly]["key"].endswith("/Archive/assembly.iam")
    assert after[bracket]["key"] == before[bracket]["key"] and after[bracket]["history"][0]["version_number"] == 1
    assert not {before[plate]["key"], before[assembly]["key"]} & object_keys(s3, bucket), "old places removed"
    assert {e.item_id: e.action for e in catalog.events} == {
        bracket: EventAction.NEW_VERSION, plate: EventAction.RENAMED, assembly: EventAction.MOVED}


@pytest.mark.parametrize("policy", list(DeletePolicy))
def test_delete_policies_apply_to_a_second_source(memory, s3, bucket, policy):
    run(memory, s3, bucket)
    doomed = file_named(memory, "plate.dwg")
    key = mirrored(s3, bucket)[doomed]["key"]
    memory.delete(doomed)
    summary = run(memory, s3, bucket, delete_policy=policy, max_delete=DeleteLimit(count=5))
    assert summary.files_deleted == 1 and not summary.deletes_refused
    assert_deleted_by_policy(s3, bucket, doomed, key, policy)
    assert_exact_memory_mirror(memory, s3, bucket)


def test_a_guard_refuses_deletes_of_a_second_source(memory, s3, bucket):
    run(memory, s3, bucket)
    for name in ("plate.dwg", "bracket.dwg", "bolt.ipt"):
        memory.delete(file_named(memory, name))
    summary = run(memory, s3, bucket, delete_policy=DeletePolicy.DELETE, max_delete=DeleteLimit(percent=50.0))
    assert summary.files_deleted == 0 and "exceed max_delete=50%" in summary.deletes_refused
    assert len(object_keys(s3, bucket)) == 4, "nothing removed"


def test_versions_all_keeps_every_earlier_version_of_a_second_source(memory, s3, bucket):
    bracket = file_named(memory, "bracket.dwg")
    memory.add_version(bracket, b"bracket v2" * 310)
    memory.add_version(bracket, b"bracket v3" * 320)
    run(memory, s3, bucket, versions="all")
    memory.add_version(bracket, b"bracket v4" * 330)  # the old tip is set aside inside S3
    reads = sum(memory.downloads.values())
    run(memory, s3, bucket, versions="all")
    assert sum(memory.downloads.values()) == reads + 1, "only the new tip is read"
    entry = assert_exact_memory_mirror(memory, s3, bucket)[bracket]
    item = memory.files[bracket]
    kept = {h["version_number"]: h["kept_key"] for h in entry["history"]}
    assert sorted(kept) == [1, 2, 3]
    for number, key in kept.items():
        assert f"/{VERSIONS_DIR}/Designs/Drawings/bracket.v{number}.dwg" in key
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == item.contents[number - 1]
    assert object_keys(s3, bucket) == {k for e in mirrored(s3, bucket).values()
                                       for k in [e["key"], *(h["kept_key"] for h in e["history"])]}


def test_a_version_the_source_refuses_is_unavailable_and_retried(memory, s3, bucket):
    plate = file_named(memory, "plate.dwg")
    memory.refused.add(memory.files[plate].version_ids[-1])
    summary = run(memory, s3, bucket)
    assert summary.files_unavailable == 1 and summary.files_copied == 3 and not summary.errors
    manifest_keys = s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/_aps_mirror/manifests/")["Contents"]
    [body] = [json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in manifest_keys]
    assert body["source"] == "memory" and body["unavailable"][plate]["reason"] == "kept offline by the test"
    memory.refused.clear()
    assert run(memory, s3, bucket).files_copied == 1
    assert_exact_memory_mirror(memory, s3, bucket)


def test_docs_and_a_second_source_share_one_mirror(simulator, aps, memory, s3, bucket):
    """One run, both sources: a Docs hub named "Vault" cannot land on the second source's root,
    each scope is synced by its own source, and the catalog tells their rows apart."""
    sim = simulator.sim
    hub = sim.add_hub("Vault")
    project = sim.add_project("Vault project", hub_id=hub)
    sim.add_file(project, sim.folder_id(project, ("Project Files",)), "bracket.dwg", size=700)
    sources = {"docs": DocsSource(aps), "memory": memory}
    writer = CatalogWriter(s3, bucket, PREFIX)
    summary = run(sources, s3, bucket, writer, top_folders=("*",))
    assert not summary.errors and summary.files_copied == len(list(sim.iter_files())) + 4
    assert_keys_distinct(s3, bucket)
    memory_entries = assert_exact_memory_mirror(memory, s3, bucket)
    docs_entries = {i: e for i, e in mirrored(s3, bucket).items() if i not in memory_entries}
    truth = {f.item_id: f for f in sim.iter_files()}
    assert set(docs_entries) == set(truth)
    for item_id, entry in docs_entries.items():
        assert entry["key"].split("/")[1].casefold() != VAULT_ROOT, entry["key"]
        body = s3.get_object(Bucket=bucket, Key=entry["key"])["Body"].read()
        assert body == sim.file_bytes(truth[item_id].tip.id), entry["key"]

    store = next(iter(memory.stores))
    assert {json.dumps(e.get("source_ids")) for e in memory_entries.values()} == {json.dumps({"store_id": store})}
    assert not [e for e in docs_entries.values() if "source_ids" in e], "Docs entries as before sources"

    writer.publish_snapshot()
    con = reader.connect(s3, bucket, PREFIX)
    by_source = dict(con.execute("SELECT source, count(*) FROM files GROUP BY source").fetchall())
    assert by_source == {"docs": len(truth), "memory": 4}
    assert dict(con.execute("SELECT source, count(DISTINCT json_extract_string(source_ids, '$.store_id')) "
                            "FROM files GROUP BY source").fetchall()) == {"docs": 0, "memory": 1}
    assert dict(con.execute("SELECT source, count(DISTINCT project_id) FROM runs GROUP BY source").fetchall()) \
        == {"docs": len({f.project for f in sim.iter_files()}), "memory": 1}
    again = run(sources, s3, bucket, top_folders=("*",))
    assert again.files_copied == again.files_renamed == 0 and not again.errors


def test_a_scope_of_a_source_the_run_lacks_fails_alone(memory, simulator, aps, s3, bucket):
    [scope] = MirrorEngine(memory, s3, MirrorConfig(bucket=bucket, prefix=PREFIX)).list_projects()
    docs_only = MirrorEngine(aps, s3, MirrorConfig(bucket=bucket, prefix=PREFIX))
    [result] = docs_only.sync_projects([scope])
    assert result.errors == ["Memory / Engineering comes from source 'memory', which this run does not "
                             "have (it has docs)"]
    assert not object_keys(s3, bucket)


def assert_deleted_by_policy(s3, bucket: str, item_id: str, key: str, policy: DeletePolicy) -> None:
    """What a delete policy leaves of a deleted file: keep marks it deleted and keeps its
    object; trash moves the object under _aps_mirror/trash/; delete removes it."""
    trash = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/_aps_mirror/trash/")
             .get("Contents", [])}
    if policy is DeletePolicy.KEEP:
        assert mirrored(s3, bucket)[item_id]["deleted_at"] and key in object_keys(s3, bucket)
    else:
        assert item_id not in mirrored(s3, bucket) and key not in object_keys(s3, bucket)
        assert [t.endswith(f"/{key}") for t in trash] == ([True] if policy is DeletePolicy.TRASH else [])
