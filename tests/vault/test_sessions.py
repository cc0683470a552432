"""Vault sessions: one sign-in per vault, one re-login after a 401 (then the 401 is final),
sign-in refusals as one AuthError line without the password, sign-out on close."""

from __future__ import annotations

import logging

import pytest

from aps_mirror.errors import ApiError, AuthError
from aps_mirror.simulator import SimulatorServer
from .conftest import MakeClient


def test_one_sign_in_serves_every_call(make_client: MakeClient, simulator: SimulatorServer) -> None:
    client = make_client(user="sam.builder", password="Builder2024")
    client.folder_tree("106")
    rows = list(client.file_versions("106"))
    assert len(rows) == 21
    calls = client.transport.counter.snapshot()
    assert calls["vault_sessions"] == 1 and calls["vault_vaults"] == 1  # the vault's name, to sign in
    assert simulator.sim.vault.sessions.open_sessions() == 1


def test_an_ended_session_is_signed_in_again_once(make_client: MakeClient, simulator: SimulatorServer) -> None:
    client = make_client(user="sam.builder", password="Builder2024")
    client.folder("106")
    simulator.sim.vault.expire_sessions()
    assert client.folder("106").full_name == "$"
    assert client.transport.counter.snapshot()["vault_sessions"] == 2
    statuses = [e["status"] for e in simulator.sim.stats()["log"] if e["endpoint"] == "vault_folder"]
    assert statuses == [200, 401, 200]


def test_a_second_401_is_final(make_client: MakeClient, simulator: SimulatorServer) -> None:
    client = make_client(user="sam.builder", password="Builder2024")
    client.folder("106")
    simulator.sim.inject_fault("vault_folder", 401, count=2)
    with pytest.raises(ApiError) as caught:
        client.folder("106")
    assert caught.value.status == 401
    assert client.transport.counter.snapshot()["vault_sessions"] == 2  # the first and one re-login


@pytest.mark.parametrize(("user", "password"), [("sam.builder", "Wrong2024pass"), ("nobody", "Nobody2024"),
                                                ("Administrator", "")])
def test_refused_sign_ins_are_one_auth_error_line(make_client: MakeClient, user: str, password: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(user=user, password=password)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as caught:
        list(client.file_versions("106"))
    message = str(caught.value)
    assert f"sign {user!r} in to the vault 'Engineering'" in message and "\n" not in message
    if password:
        assert password not in message and password not in caplog.text and password not in repr(client.sessions)


def test_close_signs_out(make_client: MakeClient, simulator: SimulatorServer) -> None:
    client = make_client(user="val.viewer", password="Viewer2024")
    client.folder("106")
    assert "V:" not in repr(client.sessions)  # no token in its repr
    client.close()
    assert simulator.sim.vault.sessions.open_sessions() == 0
    client.close()  # nothing left to sign out
