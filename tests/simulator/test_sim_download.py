"""signeds3download and the signed URL: exact bytes, sha1, Range, expiry."""

from __future__ import annotations

import hashlib
import re

import requests

from aps_mirror.simulator import Version
from .sim_helpers import Api, enc

STORAGE = re.compile(r"^urn:adsk\.objects:os\.object:([-_.a-z0-9]{3,128})/(.+)$")


def _signed(api: Api, tip: Version, **params: object) -> requests.Response:
    bucket, key = STORAGE.match(tip.storage_urn or "").groups()  # type: ignore[union-attr]
    return api.get(f"/oss/v2/buckets/{bucket}/objects/{enc(key)}/signeds3download", **params)


def _tip(api: Api, name: str) -> Version:
    return next(e.tip for e in api.server.sim.iter_files() if e.tip.name == name)


def test_download_matches_size_and_sha1(demo_api: Api) -> None:
    for name in ("Riverside Tower - Structure.rvt", "Placeholder (empty).txt", "Ärger – Détails.pdf"):
        tip = _tip(demo_api, name)
        signed = _signed(demo_api, tip, minutesExpiration=5)
        assert signed.status_code == 200, signed.text
        body = signed.json()
        assert body["status"] == "complete" and body["params"] == {}
        r = requests.get(body["url"])  # no Authorization header
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) == len(r.content) == body["size"] == tip.size
        assert hashlib.sha1(r.content).hexdigest() == body["sha1"]
        assert r.content == demo_api.server.sim.file_bytes(tip.id)


def test_large_file_is_over_8_mib_and_stable(demo_api: Api) -> None:
    tip = _tip(demo_api, "Riverside Tower - Structure.rvt")
    assert tip.size is not None and tip.size > 8 * 1024 * 1024
    assert demo_api.server.sim.file_bytes(tip.id) == demo_api.server.sim.file_bytes(tip.id)


def test_range_request(demo_api: Api) -> None:
    tip = _tip(demo_api, "Riverside Tower - Structure.rvt")
    whole = demo_api.server.sim.file_bytes(tip.id)
    url = _signed(demo_api, tip).json()["url"]
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
