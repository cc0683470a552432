"""Traversal over HTTP: hubs -> projects -> topFolders -> contents finds every seeded file."""

from __future__ import annotations

from .sim_helpers import Api, enc, truth


def test_demo_seed_shape(demo_api: Api) -> None:
    sim = demo_api.server.sim
    hubs = demo_api.ok("/project/v1/hubs")["data"]
    kinds = {h["attributes"]["name"]: (h["id"][:2], h["attributes"]["extension"]["type"]) for h in hubs}
    assert kinds["Northwind Construction"] == ("b.", "hubs:autodesk.bim360:Account")
    assert kinds["Fusion Design Team"] == ("a.", "hubs:autodesk.core:Hub")
    files = list(sim.iter_files())
    assert len(files) >= 50
    sizes = [f.tip.size for f in files]
    assert 0 in sizes and max(sizes) > 8 * 1024 * 1024
    assert {f.tip.file_type for f in files} >= {"rvt", "dwg", "pdf", "ifc", "nwd", "xlsx", "f3d", "step", "jpg", "txt"}
    assert {"Ärger – Détails.pdf", "a:b?.txt"} <= {f.tip.name for f in files}
    deleted = [f for f in sim.iter_files(include_deleted=True) if f.tip.deleted]
    assert len(deleted) == 1


def test_walk_finds_every_file(demo_api: Api) -> None:
    assert demo_api.walk() == truth(demo_api.server.sim)


def test_small_pages_give_the_same_set(demo_api: Api) -> None:
    assert demo_api.walk(limit=2) == truth(demo_api.server.sim)


def test_next_link_absent_on_last_page(demo_api: Api) -> None:
    sim = demo_api.server.sim
    pid = sim.project_id("Riverside Tower")
    fid = sim.folder_id(pid, ("Project Files", "Site Photos"))  # 5 files
    pages = list(demo_api.pages(f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}/contents", **{"page[limit]": 2}))
    assert [len(p["data"]) for p in pages] == [2, 2, 1]
    assert all("next" in p["links"] for p in pages[:-1]) and "next" not in pages[-1]["links"]
    assert len({i["id"] for p in pages for i in p["data"]}) == 5
    assert all(len(p["included"]) == len(p["data"]) for p in pages)


def test_page_limit_over_200_is_a_400(demo_api: Api) -> None:
    sim = demo_api.server.sim
    pid = sim.project_id("Riverside Tower")
    fid = sim.folder_id(pid, ("Project Files",))
    r = demo_api.get(f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}/contents", **{"page[limit]": 201})
    assert r.status_code == 400
    body = r.json()
    assert body["jsonapi"] == {"version": "1.0"}
    error = body["errors"][0]
    assert set(error) >= {"id", "status", "code", "title", "detail"} and error["status"] == "400"


def test_unknown_folder_is_a_jsonapi_404(demo_api: Api) -> None:
    pid = demo_api.server.sim.project_id("Riverside Tower")
    r = demo_api.get(f"/data/v1/projects/{enc(pid)}/folders/{enc('urn:adsk.wipprod:fs.folder:co.nope')}/contents")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND"


def test_hidden_items_only_with_include_hidden(demo_api: Api) -> None:
    sim = demo_api.server.sim
    assert demo_api.walk(includeHidden="true") == truth(sim, include_deleted=True)
    pid = sim.project_id("Riverside Tower")
    fid = sim.folder_id(pid, ("Project Files",))
    doc = demo_api.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}/contents", includeHidden="true")
    hidden = [d for d in doc["data"] if d["attributes"]["hidden"]]
    assert [h["attributes"]["displayName"] for h in hidden] == ["Old Survey.dwg"]
    tip = next(v for v in doc["included"] if v["id"] == hidden[0]["relationships"]["tip"]["data"]["id"])
    assert tip["attributes"]["extension"]["type"] == "versions:autodesk.core:Deleted"
    assert "storage" not in tip["relationships"]


def test_filters_apply_after_paging(demo_api: Api) -> None:
    sim = demo_api.server.sim
    pid = sim.project_id("Riverside Tower")
    fid = sim.folder_id(pid, ("Project Files",))  # 4 folders first, then 2 live items
    url = f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}/contents"
    first = demo_api.ok(url, **{"page[limit]": 2, "filter[type]": "items"})
    assert first["data"] == [] and "next" in first["links"]
    pages = list(demo_api.pages(url, **{"page[limit]": 2, "filter[type]": "items"}))
    names = sorted(d["attributes"]["displayName"] for p in pages for d in p["data"])
    assert names == ["Project Charter.pdf", "a:b?.txt"]
    ext = demo_api.ok(url, **{"filter[extension.type]": "items:autodesk.bim360:File"})
    assert {d["type"] for d in ext["data"]} == {"items"}


def test_item_versions_and_version_lookup(demo_api: Api) -> None:
    sim = demo_api.server.sim
    entry = next(e for e in sim.iter_files() if e.tip.name == "Rebar Schedule.xlsx")
    pid = sim.project_id(entry.project)
    pages = list(demo_api.pages(f"/data/v1/projects/{enc(pid)}/items/{enc(entry.item_id)}/versions",
                                **{"page[limit]": 3}))
    numbers = [v["attributes"]["versionNumber"] for p in pages for v in p["data"]]
    assert numbers == [4, 3, 2, 1]
    version = demo_api.ok(f"/data/v1/projects/{enc(pid)}/versions/{enc(entry.tip.id)}")
    assert version["data"]["attributes"]["storageSize"] == entry.tip.size
    tip = demo_api.ok(f"/data/v1/projects/{enc(pid)}/items/{enc(entry.item_id)}/tip")
    assert tip["data"]["id"] == entry.tip.id
    item = demo_api.ok(f"/data/v1/projects/{enc(pid)}/items/{enc(entry.item_id)}")
    assert item["data"]["relationships"]["tip"]["data"]["id"] == entry.tip.id


def test_fusion_types(demo_api: Api) -> None:
    sim = demo_api.server.sim
    entry = next(e for e in sim.iter_files() if e.project == "Drone Gimbal")
    pid = sim.project_id("Drone Gimbal")
    assert pid.startswith("a.")
    item = demo_api.ok(f"/data/v1/projects/{enc(pid)}/items/{enc(entry.item_id)}")
    assert item["data"]["attributes"]["extension"]["type"] == "items:autodesk.core:File"
    assert item["included"][0]["attributes"]["extension"]["type"] == "versions:autodesk.core:File"


def test_missing_token_is_auth_006(demo_server) -> None:  # type: ignore[no-untyped-def]
    api = Api(demo_server)
    r = api.get("/project/v1/hubs")
    assert r.status_code == 401 and r.json()["errorCode"] == "AUTH-006"
    assert set(r.json()) == {"developerMessage", "userMessage", "errorCode", "more info"}
