"""The /_sim/ change API and its Python twin: every kind of change rolls up to the project root."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from aps_mirror.simulator import Simulator
from .sim_helpers import Api, enc, truth


def _attrs(api: Api, pid: str, fid: str) -> dict:  # type: ignore[type-arg]
    return api.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}")["data"]["attributes"]


def _root(sim: Simulator, pid: str) -> str:
    return sim.account.project(pid).root.id  # type: ignore[union-attr]


def _call(api: Api, method: str, path: str, **body: object) -> dict:  # type: ignore[type-arg]
    r = requests.request(method, api.base + path, json=body)
    assert r.status_code == 200, r.text
    return r.json()


# Each change: (the folder whose own listing changes, a function making the change over HTTP).
def _changes(api: Api, pid: str) -> dict[str, tuple[str, Callable[[], object]]]:
    sim = api.server.sim
    details = sim.folder_id(pid, ("Project Files", "Architecture", "Details"))
    rebar = sim.folder_id(pid, ("Project Files", "Structure", "Rebar"))
    mep = sim.folder_id(pid, ("Project Files", "MEP"))
    stair = next(e.item_id for e in sim.iter_files() if e.tip.name == "Stair Detail A-501.dwg")
    window = next(e.item_id for e in sim.iter_files() if e.tip.name == "Window Schedule.xlsx")
    survey = next(e.item_id for e in sim.iter_files(True) if e.tip.name == "Old Survey.dwg")
    files = sim.folder_id(pid, ("Project Files",))
    return {
        "add file": (details, lambda: _call(api, "POST", "/_sim/files", project_id=pid, folder_id=details,
                                            name="n.dwg", size=10)),
        "add version": (details, lambda: _call(api, "POST", f"/_sim/items/{enc(stair)}/versions", size=99)),
        "rename item": (details, lambda: _call(api, "PATCH", f"/_sim/items/{enc(window)}", name="W.xlsx")),
        "move item": (rebar, lambda: _call(api, "PATCH", f"/_sim/items/{enc(stair)}", folder_id=rebar)),
        "delete item": (details, lambda: _call(api, "DELETE", f"/_sim/items/{enc(window)}")),
        "restore item": (files, lambda: _call(api, "POST", f"/_sim/items/{enc(survey)}/restore")),
        "create folder": (mep, lambda: _call(api, "POST", "/_sim/folders", project_id=pid, parent_folder_id=mep,
                                             name="New")),
        "rename folder": (details, lambda: _call(api, "PATCH", f"/_sim/folders/{enc(details)}", name="Det")),
        "move folder": (mep, lambda: _call(api, "PATCH", f"/_sim/folders/{enc(rebar)}", parent_folder_id=mep)),
        "delete folder": (mep, lambda: _call(api, "DELETE", f"/_sim/folders/{enc(sim.folder_id(pid, ('Project Files', 'MEP', 'New')))}")),
    }


def test_every_kind_of_change_rolls_up_to_the_root(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    pid = sim.project_id("Riverside Tower")
    root = _root(sim, pid)
    harbor = sim.project_id("Harbor Bridge Retrofit")
    other_root = _attrs(fresh_api, harbor, _root(sim, harbor))
    for kind, (folder, change) in _changes(fresh_api, pid).items():
        before_root = _attrs(fresh_api, pid, root)["lastModifiedTimeRollup"]
        before = _attrs(fresh_api, pid, folder)
        sim.advance_clock(60)
        change()
        after = _attrs(fresh_api, pid, folder)
        assert _attrs(fresh_api, pid, root)["lastModifiedTimeRollup"] > before_root, kind
        assert after["lastModifiedTimeRollup"] > before["lastModifiedTimeRollup"], kind
        assert fresh_api.walk() == truth(sim), kind
    assert _attrs(fresh_api, harbor, _root(sim, harbor)) == other_root


def test_restore_brings_back_the_content(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    entry = next(e for e in sim.iter_files(True) if e.tip.name == "Old Survey.dwg")
    live = sim.account.item(entry.item_id).versions[-2]
    restored = sim.restore_item(entry.item_id)
    assert sim.version(restored).number == 4 and sim.file_bytes(restored) == sim.file_bytes(live.id)
    assert entry.item_id in {e.item_id for e in sim.iter_files()}
    with pytest.raises(Exception):
        sim.restore_item(entry.item_id)  # not deleted any more


def test_delete_folder_hides_the_subtree_and_tombstones_items(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    pid = sim.project_id("Riverside Tower")
    arch = sim.folder_id(pid, ("Project Files", "Architecture"))
    inside = {e.item_id for e in sim.iter_files() if e.path[:2] == ("Project Files", "Architecture")}
    sim.delete_folder(arch)
    assert not inside & {e.item_id for e in sim.iter_files()}
    assert all(sim.account.item(i).tip.deleted for i in inside)
    top = fresh_api.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(sim.folder_id(pid, ('Project Files',)))}/contents",
                       includeHidden="true")
    assert any(d["id"] == arch and d["attributes"]["hidden"] for d in top["data"])
    assert fresh_api.walk() == truth(sim)


def test_projects_can_be_created_and_deleted(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    hub_id = sim.account.hubs[0].id
    pid = _call(fresh_api, "POST", "/_sim/projects", name="Depot", hub_id=hub_id)["project_id"]
    names = [p["attributes"]["name"] for p in fresh_api.ok(f"/project/v1/hubs/{enc(hub_id)}/projects")["data"]]
    assert "Depot" in names
    top = fresh_api.ok(f"/project/v1/hubs/{enc(hub_id)}/projects/{enc(pid)}/topFolders")["data"]
    assert [f["attributes"]["name"] for f in top] == ["Project Files", "Plans"]
    files = sim.folder_id(pid, ("Project Files",))
    item = sim.add_file(pid, files, "a.txt", size=5)
    assert fresh_api.walk() == truth(sim)
    _call(fresh_api, "DELETE", f"/_sim/projects/{enc(pid)}")
    assert fresh_api.get(f"/project/v1/hubs/{enc(hub_id)}/projects/{enc(pid)}").status_code == 404
    assert fresh_api.get(f"/data/v1/projects/{enc(pid)}/items/{enc(item)}").status_code == 404
    assert fresh_api.walk() == truth(sim)


def test_bad_changes_are_refused(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    pid = sim.project_id("Riverside Tower")
    arch = sim.folder_id(pid, ("Project Files", "Architecture"))
    details = sim.folder_id(pid, ("Project Files", "Architecture", "Details"))
    r = requests.patch(fresh_api.base + f"/_sim/folders/{enc(arch)}", json={"parent_folder_id": details})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "BAD_INPUT"
    assert requests.post(fresh_api.base + "/_sim/files", json={"project_id": pid}).status_code == 400
    assert requests.delete(fresh_api.base + "/_sim/items/nope").status_code == 404


def test_churn_changes_n_folders_in_a_fraction_of_projects(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    before = {e.item_id: e.tip.id for e in sim.iter_files()}
    root_rollups = {p.id: p.root.rollup for h in sim.account.hubs for p in h.projects}  # type: ignore[union-attr]
    sim.advance_clock(60)
    result = _call(fresh_api, "POST", "/_sim/churn", projects_fraction=0.5, folders_per_project=2, seed=3)
    assert result["projects"] == 2 and len(result["changes"]) == 4
    assert len({c["project_id"] for c in result["changes"]}) == 2
    after = {e.item_id: e.tip.id for e in sim.iter_files()}
    for change in result["changes"]:
        if change["kind"] == "file":
            assert change["item_id"] not in before
        else:
            assert before[change["item_id"]] != after[change["item_id"]]
        assert sim.account.project(change["project_id"]).root.rollup > root_rollups[change["project_id"]]  # type: ignore[union-attr]
    assert fresh_api.walk() == truth(sim)


def test_churn_is_deterministic_per_seed() -> None:
    one, two = Simulator(seed="demo"), Simulator(seed="demo")
    a = one.churn(0.7, 3, seed="x")
    b = two.churn(0.7, 3, seed="x")
    assert [(c["kind"], c["folder_id"]) for c in a["changes"]] == [(c["kind"], c["folder_id"]) for c in b["changes"]]
    assert one.churn(0.0, 3)["changes"] == []
