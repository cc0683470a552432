"""Vault on an `autodesk` connection: `vault_url` and its companions, each malformed value one
ConfigError line naming the field and the fix."""

from __future__ import annotations

import json

import pytest

from aps_mirror.connection import VaultSettings, parse_connection_value
from aps_mirror.errors import ConfigError


def fields(**extra):
    conn = {"conn_type": "autodesk", "login": "cid", "password": "csecret",
            "extra": {"auth_mode": "authorization_code", **extra}}
    return parse_connection_value("autodesk_default", json.dumps(conn))


def test_no_vault_url_means_no_vault() -> None:
    assert VaultSettings.from_fields(fields()) is None


@pytest.mark.parametrize("given", ["https://12345678.vg.autodesk.com", "https://12345678.vg.autodesk.com/",
                                   "https://12345678.vg.autodesk.com/AutodeskDM/Services/api/vault/v2/"])
def test_the_gateway_address_with_or_without_the_api_path(given: str) -> None:
    settings = VaultSettings.from_fields(fields(vault_url=given))
    assert settings.url == "https://12345678.vg.autodesk.com"
    assert settings.api_base == "https://12345678.vg.autodesk.com/AutodeskDM/Services/api/vault/v2"
    assert (settings.vaults, settings.uses_session) == ((), False)


def test_a_server_with_a_vault_account_and_a_selection() -> None:
    settings = VaultSettings.from_fields(fields(vault_url="http://vault.local:8080", vault_user="mirror",
                                                vault_password="s3cret-pass1", vaults="Engineering, Arch*"))
    assert (settings.url, settings.vaults, settings.user) == ("http://vault.local:8080", ("Engineering", "Arch*"),
                                                              "mirror")
    assert settings.uses_session and "s3cret-pass1" not in repr(settings)


@pytest.mark.parametrize("extra, says", [
    ({"vault_url": "vg.autodesk.com"}, "extra.vault_url 'vg.autodesk.com', which is not a Vault address"),
    ({"vault_url": "ftp://x.vg.autodesk.com"}, "which is not a Vault address"),
    ({"vault_url": "https://x.vg.autodesk.com/other/path"}, "which is not a Vault address"),
    ({"vault_url": 42}, "extra.vault_url of type int; it must be text"),
    ({"vaults": ["Engineering"]}, "has extra.vaults but no extra.vault_url"),
    ({"vault_url": "https://x.vg.autodesk.com", "vaults": [1]}, "extra.vaults=[1]; write vault names or ids"),
    ({"vault_url": "https://x.vg.autodesk.com", "vaults": "a,,b"}, "write vault names or ids"),
    ({"vault_url": "https://x.vg.autodesk.com", "vault_user": "u"}, "extra.vault_user without extra.vault_password"),
    ({"vault_url": "https://x.vg.autodesk.com", "vault_password": "p"},
     "extra.vault_password without extra.vault_user"),
    ({"vault_url": "https://x.vg.autodesk.com", "auth_mode": "client_credentials"},
     "a client-credentials token, which Vault refuses"),
])
def test_a_malformed_vault_setting_is_one_line(extra: dict, says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        VaultSettings.from_fields(fields(**extra))
    message = str(raised.value)
    assert says in message and "\n" not in message and message.startswith("Connection 'autodesk_default'")


def test_a_client_credentials_connection_reaches_vault_with_a_vault_account() -> None:
    settings = VaultSettings.from_fields(fields(vault_url="https://x.vg.autodesk.com", auth_mode="client_credentials",
                                                vault_user="svc", vault_password="Passw0rd!"))
    assert settings.uses_session
