"""The APS client against the simulator over HTTP: paging, retries, token refresh."""

from __future__ import annotations

import time

import pytest

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.models import Folder, Item
from aps_mirror.aps.retry import RetryPolicy
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.errors import ApiError, AuthError, RateLimited
from tests.conftest import FAST_RETRY, connection_for


def walk_all(client: ApsClient) -> set[tuple[str, str]]:
    """(item id, tip version id) of every file the client can reach."""
    return {(item.id, item.tip_version_id) for item in _all_items(client)}


def test_pagination_across_pages_finds_the_same_files(simulator):
    one_page = ApsClient(ApsTransport(connection_for(simulator)))
    small_pages = ApsClient(ApsTransport(connection_for(simulator)), page_limit=2)
    everything = walk_all(one_page)
    assert len(everything) >= 50
    assert walk_all(small_pages) == everything
    calls = small_pages.transport.counter.snapshot()
    assert calls["folder_contents"] > one_page.transport.counter.snapshot()["folder_contents"]


def test_listing_includes_each_items_tip_version(aps):
    project = next(aps.projects(aps.hubs()[0].id))
    top = aps.top_folders(project.hub_id, project.id)[0]
    items = [c for c in aps.folder_contents(project.id, top.id) if isinstance(c, Item)]
    assert items
    for item in items:
        assert item.tip is not None and item.tip.id == item.tip_version_id
        assert item.tip.storage_location() is not None


def test_429_with_retry_after_is_waited_out(simulator):
    client = ApsClient(ApsTransport(connection_for(simulator),
                                    retry_policy=RetryPolicy(attempts=4, backoff_initial=0.01)))
    client.hubs()  # token fetched first, so only hub calls are timed
    simulator.sim.reset_stats()
    simulator.sim.inject_fault("hubs", 429, count=2, retry_after=1)
    started = time.monotonic()
    hubs = client.hubs()
    elapsed = time.monotonic() - started
    assert len(hubs) == 2
    assert elapsed >= 2.0, "each 429 asked for 1 s and must be honoured"
    assert simulator.sim.stats()["requests"]["hubs"] == 3
    assert client.transport.counter.throttled["hubs"] == 2


def test_429_that_never_ends_raises_rate_limited_with_advice(simulator):
    client = ApsClient(ApsTransport(connection_for(simulator),
                                    retry_policy=RetryPolicy(attempts=3, backoff_initial=0.01)))
    simulator.sim.inject_fault("hubs", 429, count=10, retry_after=0)
    with pytest.raises(RateLimited, match="rate-limiting") as caught:
        client.hubs()
    assert caught.value.status == 429


def test_5xx_is_retried_with_backoff(simulator):
    client = ApsClient(ApsTransport(connection_for(simulator), retry_policy=FAST_RETRY))
    simulator.sim.inject_fault("projects", 503, count=2)
    hub = client.hubs()[0]
    assert list(client.projects(hub.id))


def test_expired_access_token_is_refreshed_on_401(simulator):
    client = ApsClient(ApsTransport(connection_for(simulator), retry_policy=FAST_RETRY))
    client.hubs()
    simulator.sim.advance_clock(2 * 3600)  # the simulator now rejects the cached token
    assert client.hubs()
    assert client.transport.counter.snapshot()["token"] == 2


def test_bad_client_secret_says_what_to_do(simulator):
    client = ApsClient(ApsTransport(connection_for(simulator, client_secret="wrong")))
    with pytest.raises(AuthError, match="client id/secret"):
        client.hubs()


def test_404_is_a_final_api_error(aps):
    with pytest.raises(ApiError) as caught:
        list(aps.projects("b.does-not-exist"))
    assert caught.value.status == 404


def test_signed_download_streams_the_exact_bytes(aps, simulator):
    truth = max(simulator.sim.iter_files(), key=lambda f: f.tip.size or 0)
    version = next(c.tip for c in _all_items(aps) if c.tip.id == truth.tip.id)
    signed = aps.signed_download(version)
    assert signed.status == "complete" and signed.size == version.storage_size
    with aps.open_signed_url(signed.url) as response:
        body = b"".join(response.iter_content(65536))
    assert len(body) > 1024 * 1024
    assert body == simulator.sim.file_bytes(truth.tip.id)


def _all_items(client: ApsClient):
    for hub in client.hubs():
        for project in client.projects(hub.id):
            stack = client.top_folders(hub.id, project.id)
            while stack:
                folder = stack.pop()
                for child in client.folder_contents(project.id, folder.id):
                    if isinstance(child, Folder):
                        stack.append(child)
                    else:
                        assert isinstance(child, Item)
                        yield child
