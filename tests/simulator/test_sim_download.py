"""signeds3download and the signed URL: exact bytes, sha1, Range, expiry.

Bytes are checked as served over HTTP, against what the simulator declares elsewhere: the
version's storageSize in the Data Management API, the SHA-1 of signeds3download, the full body
for ranges, another simulator with the same seed for stability."""

from __future__ import annotations

import hashlib
import re

import requests

from aps_mirror.simulator import Simulator, SimulatorServer, Version
from .sim_helpers import Api, enc

STORAGE = re.compile(r"^urn:adsk\.objects:os\.object:([-_.a-z0-9]{3,128})/(.+)$")


def _signed(api: Api, tip: Version, **params: object) -> requests.Response:
    bucket, key = STORAGE.match(tip.storage_urn or "").groups()  # type: ignore[union-attr]
    return api.get(f"/oss/v2/buckets/{bucket}/objects/{enc(key)}/signeds3download", **params)


def _tip(api: Api, name: str) -> Version:
    return next(e.tip for e in api.server.sim.iter_files() if e.tip.name == name)


def _declared_size(api: Api, version: Version) -> int:
    """The size the Data Management API declares for the version (its storageSize)."""
    doc = api.ok(f"/data/v1/projects/{enc(version.item.project.id)}/versions/{enc(version.id)}")
    return doc["data"]["attributes"]["storageSize"]


def _download(api: Api, version: Version) -> tuple[dict, bytes]:
    """The signeds3download answer and the body its URL serves (fetched without a token)."""
    signed = _signed(api, version)
    assert signed.status_code == 200, signed.text
    r = requests.get(signed.json()["url"])
    assert r.status_code == 200
    return signed.json(), r.content


def test_download_matches_size_and_sha1(demo_api: Api) -> None:
    for name in ("Riverside Tower - Structure.rvt", "Placeholder (empty).txt", "Ärger – Détails.pdf"):
        tip = _tip(demo_api, name)
        signed = _signed(demo_api, tip, minutesExpiration=5)
        assert signed.status_code == 200, signed.text
        body = signed.json()
        assert body["status"] == "complete" and body["params"] == {}
        r = requests.get(body["url"])  # no Authorization header
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) == len(r.content) == body["size"] == _declared_size(demo_api, tip)
        assert hashlib.sha1(r.content).hexdigest() == body["sha1"] == demo_api.server.sim.sha1(tip.id)
        assert r.content == demo_api.server.sim.file_bytes(tip.id)


def test_large_file_in_unaligned_ranges_adds_up_to_the_declared_file(demo_api: Api) -> None:
    tip = _tip(demo_api, "Riverside Tower - Structure.rvt")
    size = _declared_size(demo_api, tip)
    assert size > 8 * 1024 * 1024  # several generator blocks: the mirror uploads it in parts
    signed = _signed(demo_api, tip).json()
    part = 3 * 1024 * 1024 + 1  # not a multiple of the simulator's 1 MiB blocks
    parts = []
    for start in range(0, size, part):
        end = min(start + part, size) - 1
        r = requests.get(signed["url"], headers={"Range": f"bytes={start}-{end}"})
        assert r.status_code == 206 and r.headers["Content-Range"] == f"bytes {start}-{end}/{size}"
        assert len(r.content) == end - start + 1
        parts.append(r.content)
    joined = b"".join(parts)
    assert len(joined) == size and hashlib.sha1(joined).hexdigest() == signed["sha1"] == demo_api.server.sim.sha1(tip.id)


def test_same_seed_serves_the_same_bytes_in_another_simulator(demo_api: Api) -> None:
    # A file's bytes must not change between runs, or an incremental mirror could not skip it.
    tip = _tip(demo_api, "Riverside Tower - Structure.rvt")
    signed, served = _download(demo_api, tip)
    with SimulatorServer(Simulator(seed="demo", rate_scale=0)) as other_server:
        other = Api(other_server)
        other.client_credentials()
        other_signed, other_served = _download(other, _tip(other, tip.name))
    assert len(served) == len(other_served) == tip.size
    assert other_signed["sha1"] == signed["sha1"] == hashlib.sha1(served).hexdigest()
    assert served == other_served


def test_different_content_serves_different_bytes(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    entry = next(e for e in sim.iter_files() if e.tip.name == "Survey Notes.txt")
    project_id = sim.project_id(entry.project)
    twin_id = sim.add_file(project_id, sim.folder_id(project_id, entry.path), "Survey Notes copy.txt",
                           size=entry.tip.size)
    twin = next(e.tip for e in sim.iter_files() if e.item_id == twin_id)
    versions = {"original": entry.tip, "twin": twin,
                "newer": sim.version(sim.add_version(entry.item_id)),  # new content, same size
                "renamed": sim.version(sim.rename_item(twin_id, "Survey Notes twin.txt"))}  # same bytes
    bodies = {}
    for label, version in versions.items():
        signed, bodies[label] = _download(fresh_api, version)
        assert len(bodies[label]) == entry.tip.size == _declared_size(fresh_api, version), label
        assert hashlib.sha1(bodies[label]).hexdigest() == signed["sha1"], label
    assert bodies["twin"] != bodies["original"] != bodies["newer"] != bodies["twin"]
    assert bodies["renamed"] == bodies["twin"]


def test_range_request(demo_api: Api) -> None:
    tip = _tip(demo_api, "Riverside Tower - Structure.rvt")
    signed, whole = _download(demo_api, tip)
    url = signed["url"]
    r = requests.get(url, headers={"Range": "bytes=1048000-1048999"})  # spans a generator block edge
    assert r.status_code == 206
    assert r.content == whole[1048000:1049000]
    assert r.headers["Content-Range"] == f"bytes 1048000-1048999/{len(whole)}"
    tail = requests.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == whole[-10:]
    beyond = requests.get(url, headers={"Range": f"bytes={len(whole)}-"})
    assert beyond.status_code == 416


def test_signed_url_expires(fresh_api: Api) -> None:
    tip = _tip(fresh_api, "Project Charter.pdf")
    url = _signed(fresh_api, tip, minutesExpiration=1).json()["url"]
    assert requests.get(url).status_code == 200
    fresh_api.server.sim.advance_clock(61)
    expired = requests.get(url)
    assert expired.status_code == 403 and "AccessDenied" in expired.text
    assert requests.get(url.replace("Signature=", "Signature=0")).status_code == 403


def test_minutes_expiration_bounds(demo_api: Api) -> None:
    tip = _tip(demo_api, "Project Charter.pdf")
    assert _signed(demo_api, tip, minutesExpiration=61).status_code == 400
    assert _signed(demo_api, tip, minutesExpiration=0).status_code == 400
    missing = demo_api.get("/oss/v2/buckets/wip.dm.prod/objects/nope.pdf/signeds3download")
    assert missing.status_code == 404


def test_download_stats(fresh_api: Api) -> None:
    tip = _tip(fresh_api, "Survey Notes.txt")
    fresh_api.server.sim.reset_stats()
    url = _signed(fresh_api, tip).json()["url"]
    requests.get(url).raise_for_status()
    stats = requests.get(fresh_api.base + "/_sim/stats").json()
    assert stats["requests"] == {"signeds3download": 1, "download": 1}
    assert stats["downloads"] == 1 and stats["bytes_served"] == tip.size and stats["total"] == 2
    assert [e["endpoint"] for e in stats["log"]] == ["signeds3download", "download"]
