"""File content: Range/206/416 with Accept-Ranges, signed URLs (no Authorization, Range, expiry at
most 180 s), cloaked files, and the gateway's payload quota (a whole big file fails, chunks work)."""

from __future__ import annotations

import requests

from aps_mirror.simulator import SimulatorServer
from aps_mirror.simulator.vault.gateway import PAYLOAD_LIMIT
from .vault_helpers import VaultApi


def _tip(api: VaultApi, path: tuple[str, ...], name: str) -> str:
    vault = api.sim.vault
    return vault.file(api.vault_id, vault.file_id(api.vault_id, path, name)).tip.id


def _content(api: VaultApi, version_id: str) -> str:
    return api.vault_path(f"/file-versions/{version_id}/content")


def test_whole_file_and_byte_ranges(demo_server: SimulatorServer) -> None:
    api = VaultApi(demo_server).aps_user()
    version = _tip(api, ("Designs", "Gearbox"), "Gearbox Assembly.iam")
    data = api.sim.vault.file_bytes(api.vault_id, version)
    whole = api.get(_content(api, version))
    assert whole.status_code == 200 and whole.content == data and len(data) == 1_250_000
    assert whole.headers["Accept-Ranges"] == "bytes" and whole.headers["Content-Length"] == str(len(data))
    assert whole.headers["Content-Type"] == "application/octet-stream" and "Content-Range" not in whole.headers
    for header, start, end in (("bytes=0-999", 0, 999), ("bytes=1249000-", 1_249_000, 1_249_999),
                               ("bytes=-10", 1_249_990, 1_249_999), ("bytes=1249990-9999999", 1_249_990, 1_249_999)):
        part = api.get(_content(api, version), headers={"Range": header})
        assert part.status_code == 206, header
        assert part.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
        assert part.headers["Content-Length"] == str(end - start + 1) and part.content == data[start:end + 1]
        assert part.headers["Accept-Ranges"] == "bytes"


def test_unsatisfiable_ranges_are_416_without_a_body(demo_server: SimulatorServer) -> None:
    api = VaultApi(demo_server).aps_user()
    version = _tip(api, ("Designs", "Gearbox"), "Shaft.ipt")
    beyond = api.get(_content(api, version), headers={"Range": "bytes=310000-"})
    assert beyond.status_code == 416 and beyond.content == b""
    assert beyond.headers["Content-Range"] == "bytes */310000"
    empty = _tip(api, ("Projects", "2024-117 Customer #42 & Partners"), "Placeholder (empty).txt")
    assert api.get(_content(api, empty), headers={"Range": "bytes=0-0"}).status_code == 416
    whole = api.get(_content(api, empty))
    assert whole.status_code == 200 and whole.content == b"" and whole.headers["Content-Length"] == "0"


def test_content_disposition(demo_server: SimulatorServer) -> None:
    api = VaultApi(demo_server).aps_user()
    version = _tip(api, ("Designs", "Conveyor"), "Ünïcødé 設計図.dwg")
    r = api.get(_content(api, version), contentDisposition="attachment", headers={"Range": "bytes=0-0"})
    assert r.headers["Content-Disposition"].startswith("attachment; filename*=UTF-8''%C3%9Cn%C3%AF")


def test_cloaked_content_is_refused_to_users_and_served_to_the_admin(fresh_server: SimulatorServer) -> None:
    api = VaultApi(fresh_server).aps_user()
    version = _tip(api, ("Projects", "2024-117 Customer #42 & Partners"), "Salary Plan.xlsx")
    assert api.error(api.get(_content(api, version)), 401)["errorCode"] == "8000"
    assert api.error(api.get(api.vault_path(f"/file-versions/{version}/signedurl")), 401)["errorCode"] == "8000"
    fresh_server.sim.vault.configure(gateway=False)  # the admin's blank password only works on the server
    admin = VaultApi(fresh_server)
    admin.sign_in("Administrator")
    assert admin.get(_content(admin, version)).content == fresh_server.sim.vault.file_bytes(api.vault_id, version)


def test_signed_url_needs_no_authorization_honours_range_and_expires(fresh_server: SimulatorServer) -> None:
    api = VaultApi(fresh_server).aps_user()
    version = _tip(api, ("Standards",), "Materials Library.xlsx")
    data = fresh_server.sim.vault.file_bytes(api.vault_id, version)
    signed = api.ok(api.vault_path(f"/file-versions/{version}/signedurl"), "SignedUrl", expirationTime=30)
    assert signed["id"] == version and signed["url"].startswith("/AutodeskDM/")
    url = fresh_server.base_url + signed["url"]
    assert requests.get(url).content == data
    part = requests.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    forged = requests.get(url.replace("sig=", "sig=0"))
    api.error(forged, 403)
    fresh_server.sim.advance_clock(31)
    api.error(requests.get(url), 403)
    default = api.ok(api.vault_path(f"/file-versions/{version}/signedurl"))
    fresh_server.sim.advance_clock(179)
    assert requests.get(fresh_server.base_url + default["url"]).status_code == 200
    fresh_server.sim.advance_clock(1)
    assert requests.get(fresh_server.base_url + default["url"]).status_code == 403


def test_signed_url_lifetime_is_at_most_180_seconds(demo_server: SimulatorServer) -> None:
    api = VaultApi(demo_server).aps_user()
    version = _tip(api, (), "Readme.txt")
    for bad in ("181", "0", "soon"):
        api.error(api.get(api.vault_path(f"/file-versions/{version}/signedurl"), expirationTime=bad), 400)


def test_gateway_payload_quota_fails_a_whole_big_file_and_passes_chunks(fresh_server: SimulatorServer) -> None:
    sim = fresh_server.sim
    api = VaultApi(fresh_server).aps_user()
    folder = sim.vault.folder_id(api.vault_id, ("Designs",))
    file_id = sim.vault.add_file(api.vault_id, folder, "Factory Layout.dwg", size=PAYLOAD_LIMIT + 1)
    version = sim.vault.file(api.vault_id, file_id).tip.id
    whole = api.get(_content(api, version))
    assert api.error(whole, 500)["title"] == "Vault Gateway"
    over = api.get(_content(api, version), headers={"Range": f"bytes=0-{PAYLOAD_LIMIT}"})
    api.error(over, 500)
    chunk = 32 * 1024 * 1024
    for start in (0, chunk):
        with api.session.get(api.url(_content(api, version)), stream=True,
                             headers={**api.headers(), "Range": f"bytes={start}-{start + chunk - 1}"}) as r:
            assert r.status_code == 206
            end = min(start + chunk, PAYLOAD_LIMIT + 1) - 1
            assert r.headers["Content-Range"] == f"bytes {start}-{end}/{PAYLOAD_LIMIT + 1}"
    sim.vault.configure(gateway=False)  # the server itself has no quota
    with api.session.get(api.url(_content(api, version)), stream=True, headers=api.headers()) as r:
        assert r.status_code == 200 and r.headers["Content-Length"] == str(PAYLOAD_LIMIT + 1)
