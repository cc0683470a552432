"""The Python change API: add, version, rename, move, delete; rollup to the root; determinism."""

from __future__ import annotations

from aps_mirror.simulator import Simulator
from .sim_helpers import Api, enc, truth


def _folder(api: Api, pid: str, fid: str) -> dict:  # type: ignore[type-arg]
    return api.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}")["data"]["attributes"]


def test_rollup_propagates_to_the_root(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    pid = sim.project_id("Riverside Tower")
    chain = [("Project Files",), ("Project Files", "Architecture"), ("Project Files", "Architecture", "Details")]
    ids = [sim.folder_id(pid, p) for p in chain]
    root_id = sim.account.project(pid).root.id  # type: ignore[union-attr]
    sibling = sim.folder_id(pid, ("Project Files", "MEP"))
    before = {fid: _folder(fresh_api, pid, fid) for fid in [*ids, root_id, sibling]}
    sim.advance_clock(60)
    item_id = sim.add_file(pid, ids[-1], "New Detail.dwg", size=2048)
    after = {fid: _folder(fresh_api, pid, fid) for fid in [*ids, root_id, sibling]}
    for fid in [*ids, root_id]:
        assert after[fid]["lastModifiedTimeRollup"] > before[fid]["lastModifiedTimeRollup"]
    assert after[sibling] == before[sibling]
    assert after[ids[-1]]["lastModifiedTime"] > before[ids[-1]]["lastModifiedTime"]
    assert after[ids[-1]]["objectCount"] == before[ids[-1]]["objectCount"] + 1
    assert after[ids[0]]["lastModifiedTime"] == before[ids[0]]["lastModifiedTime"]
    assert item_id in {e.item_id for e in sim.iter_files()}
    assert fresh_api.walk() == truth(sim)


def test_version_rename_move_delete(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    pid = sim.project_id("Harbor Bridge Retrofit")
    survey = sim.folder_id(pid, ("Project Files", "Survey"))
    reports = sim.folder_id(pid, ("Project Files", "Reports"))
    item_id = sim.add_file(pid, survey, "notes.txt", size=10, content_seed="same")
    first = sim.account.item(item_id).tip
    v2 = sim.add_version(item_id, size=20)
    assert v2.endswith("?version=2") and len(sim.file_bytes(v2)) == 20
    v3 = sim.rename_item(item_id, "renamed.txt")
    assert sim.file_bytes(v3) == sim.file_bytes(v2) and sim.version(v3).name == "renamed.txt"
    sim.move_item(item_id, reports)
    entry = next(e for e in sim.iter_files() if e.item_id == item_id)
    assert entry.path == ("Project Files", "Reports") and entry.tip.name == "renamed.txt"
    assert fresh_api.walk() == truth(sim)
    tomb = sim.delete_item(item_id)
    assert sim.version(tomb).deleted and item_id not in {e.item_id for e in sim.iter_files()}
    assert fresh_api.walk() == truth(sim)
    versions = fresh_api.ok(f"/data/v1/projects/{enc(pid)}/items/{enc(item_id)}/versions")["data"]
    assert [v["attributes"]["versionNumber"] for v in versions] == [4, 3, 2, 1]
    assert first.size == 10 and sim.file_bytes(first.id) == sim.account.file_bytes(first)


def test_content_seed_gives_identical_bytes(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    pid = sim.project_id("Drone Gimbal")
    fid = sim.folder_id(pid, ("Electronics",))
    a = sim.account.item(sim.add_file(pid, fid, "a.bin", size=5000, content_seed="x")).tip.id
    b = sim.account.item(sim.add_file(pid, fid, "b.bin", size=5000, content_seed="x")).tip.id
    assert sim.file_bytes(a) == sim.file_bytes(b) and sim.sha1(a) == sim.sha1(b)


def test_seed_is_deterministic() -> None:
    one, two = Simulator(seed="demo"), Simulator(seed="demo")
    left = [(e.item_id, e.tip.id, e.tip.size, e.tip.storage_urn) for e in one.iter_files(True)]
    right = [(e.item_id, e.tip.id, e.tip.size, e.tip.storage_urn) for e in two.iter_files(True)]
    assert left == right
    some = next(e.tip.id for e in one.iter_files() if e.tip.name == "Survey Notes.txt")
    assert one.file_bytes(some) == two.file_bytes(some)
    assert one.client_id == two.client_id
    other = Simulator(seed="empty")
    assert list(other.iter_files()) == [] and len(other.account.hubs) == 1
