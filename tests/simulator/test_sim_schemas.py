"""Responses validate against Autodesk's OpenAPI schemas (with the two documented corrections)."""

from __future__ import annotations

import pytest

from .sim_helpers import Api, enc, validate

DM = "datamanagement.yaml"


@pytest.fixture(scope="module")
def walked(demo_server) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """One response of each kind, from every hub and project."""
    api = Api(demo_server)
    api.client_credentials()
    out: dict[str, list] = {"Hubs": [], "Hub": [], "Projects": [], "Project": [], "TopFolders": [],  # type: ignore[type-arg]
                            "Folder": [], "FolderContents": [], "Versions": [], "Item": [], "Version": [],
                            "ItemTip": []}
    hubs = api.ok("/project/v1/hubs")
    out["Hubs"].append(hubs)
    for hub in hubs["data"]:
        hub_url = f"/project/v1/hubs/{enc(hub['id'])}"
        out["Hub"].append(api.ok(hub_url))
        projects = api.ok(f"{hub_url}/projects")
        out["Projects"].append(projects)
        for project in projects["data"]:
            pid = project["id"]
            out["Project"].append(api.ok(f"{hub_url}/projects/{enc(pid)}"))
            top = api.ok(f"{hub_url}/projects/{enc(pid)}/topFolders")
            out["TopFolders"].append(top)
            stack = [f["id"] for f in top["data"]]
            while stack:
                fid = stack.pop()
                out["Folder"].append(api.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}"))
                contents = api.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}/contents",
                                  includeHidden="true")
                out["FolderContents"].append(contents)
                for entry in contents["data"]:
                    if entry["type"] == "folders":
                        stack.append(entry["id"])
                    elif len(out["Versions"]) < 12 or entry["attributes"]["hidden"]:
                        base = f"/data/v1/projects/{enc(pid)}/items/{enc(entry['id'])}"
                        out["Versions"].append(api.ok(f"{base}/versions"))
                        out["Item"].append(api.ok(base))
                        out["ItemTip"].append(api.ok(f"{base}/tip"))
                        tip = entry["relationships"]["tip"]["data"]["id"]
                        out["Version"].append(api.ok(f"/data/v1/projects/{enc(pid)}/versions/{enc(tip)}"))
    return out


@pytest.mark.parametrize("schema", ["Hubs", "Hub", "Projects", "Project", "TopFolders", "Folder",
                                    "FolderContents", "Versions", "Item", "Version", "ItemTip"])
def test_data_management_schemas(walked: dict, schema: str) -> None:  # type: ignore[type-arg]
    assert walked[schema], schema
    for document in walked[schema]:
        validate(document, DM, schema)


def test_empty_folder_contents_validate(demo_api: Api) -> None:
    sim = demo_api.server.sim
    pid = sim.project_id("Harbor Bridge Retrofit")
    fid = sim.folder_id(pid, ("Plans", "Empty Folder"))
    doc = demo_api.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}/contents")
    assert doc["data"] == []
    validate(doc, DM, "FolderContents")


def test_signeds3download_schema(demo_api: Api) -> None:
    tip = next(e.tip for e in demo_api.server.sim.iter_files() if e.tip.name == "Pinout.pdf")
    key = (tip.storage_urn or "").split("/", 1)[1]
    doc = demo_api.ok(f"/oss/v2/buckets/wip.dm.prod/objects/{enc(key)}/signeds3download")
    validate(doc, "oss.yaml", "signeds3download_response")


def test_token_schemas(demo_api: Api) -> None:
    validate(demo_api.client_credentials(), "authentication.yaml", "twoLeggedToken")
