"""The provider registers with Airflow: `airflow providers ...` lists it, the form is relabelled."""

from __future__ import annotations

import json

import pytest

from aps_mirror.airflow_provider.hooks.autodesk import AutodeskHook
from aps_mirror.airflow_provider.provider_info import get_provider_info
from tests.airflow_provider.airflow_home import run_airflow


def _cli_json(*args: str) -> list[dict]:
    result = run_airflow(*args, "--output", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout[result.stdout.index("["):])


def test_providers_list_shows_aps_mirror() -> None:
    rows = _cli_json("providers", "list")
    ours = [row for row in rows if row["package_name"] == "aps-mirror"]
    assert len(ours) == 1, [row["package_name"] for row in rows]
    assert ours[0]["version"] == get_provider_info()["versions"][0]


def test_providers_hooks_lists_autodesk() -> None:
    rows = _cli_json("providers", "hooks")
    autodesk = [row for row in rows if row["connection_type"] == "autodesk"]
    assert autodesk == [{
        "connection_type": "autodesk",
        "class": "aps_mirror.airflow_provider.hooks.autodesk.AutodeskHook",
        "conn_id_attribute_name": "autodesk_conn_id",
        "package_name": "aps-mirror",
        "hook_name": "Autodesk Platform Services",
    }]


def test_provider_info_matches_the_hook() -> None:
    info = get_provider_info()
    assert info["package-name"] == "aps-mirror"
    (conn_type,) = info["connection-types"]
    assert conn_type["connection-type"] == AutodeskHook.conn_type
    assert conn_type["hook-name"] == AutodeskHook.hook_name
    module, _, name = conn_type["hook-class-name"].rpartition(".")
    assert (AutodeskHook.__module__, AutodeskHook.__name__) == (module, name)
    behaviour = AutodeskHook.get_ui_field_behaviour()
    assert conn_type["ui-field-behaviour"] == {
        "hidden-fields": behaviour["hidden_fields"],
        "relabeling": behaviour["relabeling"],
        "placeholders": behaviour["placeholders"],
    }


def test_form_is_relabelled_for_an_aps_app() -> None:
    behaviour = AutodeskHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == {
        "host": "API base URL", "login": "Client ID", "password": "Client Secret"}
    assert behaviour["placeholders"]["host"] == "https://developer.api.autodesk.com"
    assert set(behaviour["hidden_fields"]) == {"schema", "port"}


def test_extra_fields_offer_auth_mode_but_never_the_refresh_token() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    fields = conn_type["conn-fields"]
    assert {"auth_mode", "scopes", "callback_url"} <= set(fields)
    assert "refresh_token" not in fields
    assert fields["auth_mode"]["schema"]["enum"] == ["authorization_code", "ssa", "client_credentials"]


def test_airflow_serves_the_form_metadata_without_importing_flask() -> None:
    rows = _cli_json("providers", "widgets")
    ours = {row["connection_parameter_name"] for row in rows if row["package_name"] == "aps-mirror"}
    assert ours == {f"extra__autodesk__{name}" for name in ("auth_mode", "scopes", "callback_url", "user_id")}
