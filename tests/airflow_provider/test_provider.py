"""The provider registers with Airflow: `airflow providers ...` lists it, the form is relabelled,
the UI plugin loads from its entry point. Expectations are written out here, never read back
from the provider module, so a change to what Airflow is told fails a test."""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import jsonschema

from tests.airflow_provider.airflow_home import REPO, run_airflow

HOOK_PATH = "aps_mirror.airflow_provider.hooks.autodesk.AutodeskHook"
PLUGIN_PATH = "aps_mirror.airflow_provider.ui.plugin:ApsMirrorPlugin"
PROVIDER_INFO_PATH = "aps_mirror.airflow_provider.provider_info:get_provider_info"
EXPECTED_BEHAVIOUR = {
    "hidden_fields": ["schema", "port"],
    "relabeling": {"host": "API base URL", "login": "Client ID", "password": "Client Secret"},
}
AUTH_MODES = ["authorization_code", "ssa", "client_credentials"]
EXTRA_FIELDS = {"auth_mode", "scopes", "callback_url", "user_id"}


def _cli_json(*args: str) -> list[dict]:
    result = run_airflow(*args, "--output", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout[result.stdout.index("["):])


def _project_version() -> str:
    """The version as written once, in src/aps_mirror/__init__.py, which pyproject.toml reads."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "aps_mirror.__version__"}
    written = re.search(r'^__version__ = "([^"]+)"$', (REPO / "src/aps_mirror/__init__.py").read_text(), re.M)
    assert written, "src/aps_mirror/__init__.py does not write __version__"
    return written.group(1)


def _entry_point(group: str, value: str):
    (found,) = [ep for ep in entry_points(group=group) if ep.value == value]
    assert found.dist is not None and found.dist.name == "aps-mirror"
    return found


def _airflow_schema(name: str) -> dict:
    import airflow

    return json.loads((Path(airflow.__file__).parent / name).read_text())


def _provider_info() -> dict:
    # Through the entry point Airflow itself calls, not an import of our module.
    return _entry_point("apache_airflow_provider", PROVIDER_INFO_PATH).load()()


def test_providers_list_shows_aps_mirror_at_the_project_version() -> None:
    rows = _cli_json("providers", "list")
    ours = [row for row in rows if row["package_name"] == "aps-mirror"]
    assert len(ours) == 1, [row["package_name"] for row in rows]
    assert ours[0]["version"] == _project_version()


def test_providers_hooks_lists_autodesk() -> None:
    rows = _cli_json("providers", "hooks")
    autodesk = [row for row in rows if row["connection_type"] == "autodesk"]
    assert autodesk == [{
        "connection_type": "autodesk",
        "class": HOOK_PATH,
        "conn_id_attribute_name": "autodesk_conn_id",
        "package_name": "aps-mirror",
        "hook_name": "Autodesk Platform Services",
    }]


def test_provider_info_is_valid_for_airflow_and_names_an_importable_hook() -> None:
    from airflow.sdk import BaseHook

    info = _provider_info()
    jsonschema.validate(info, _airflow_schema("provider_info.schema.json"))
    assert info["package-name"] == "aps-mirror" and info["versions"] == [_project_version()]
    (conn_type,) = info["connection-types"]
    assert (conn_type["connection-type"], conn_type["hook-name"], conn_type["hook-class-name"]) == (
        "autodesk", "Autodesk Platform Services", HOOK_PATH)
    module_name, _, class_name = HOOK_PATH.rpartition(".")
    assert [module_name] == [m for hook in info["hooks"] for m in hook["python-modules"]]
    hook = getattr(importlib.import_module(module_name), class_name)
    assert issubclass(hook, BaseHook)
    assert (hook.conn_type, hook.hook_name, hook.conn_name_attr, hook.default_conn_name) == (
        "autodesk", "Autodesk Platform Services", "autodesk_conn_id", "autodesk_default")


def test_form_is_relabelled_for_an_aps_app() -> None:
    (conn_type,) = _provider_info()["connection-types"]
    declared = conn_type["ui-field-behaviour"]
    assert (set(declared["hidden-fields"]), declared["relabeling"]) == (
        set(EXPECTED_BEHAVIOUR["hidden_fields"]), EXPECTED_BEHAVIOUR["relabeling"])
    placeholders = declared["placeholders"]
    assert set(placeholders) == {"host", "login", "password", "extra"}
    assert placeholders["host"] == "https://developer.api.autodesk.com"
    example_extra = json.loads(placeholders["extra"])  # users copy it: it must be valid JSON
    assert example_extra["auth_mode"] in AUTH_MODES and set(example_extra) <= EXTRA_FIELDS


def test_airflow_reads_the_same_form_from_the_hook() -> None:
    from airflow.providers_manager import ProvidersManager

    from aps_mirror.airflow_provider.hooks.autodesk import AutodeskHook

    behaviour = AutodeskHook.get_ui_field_behaviour()
    jsonschema.validate(behaviour, _airflow_schema("customized_form_field_behaviours.schema.json"))
    seen_by_airflow = ProvidersManager().field_behaviours["autodesk"]
    for view in (behaviour, seen_by_airflow):
        assert set(view["hidden_fields"]) == set(EXPECTED_BEHAVIOUR["hidden_fields"])
        assert view["relabeling"] == EXPECTED_BEHAVIOUR["relabeling"]
        assert view["placeholders"]["host"] == "https://developer.api.autodesk.com"


def test_extra_fields_offer_auth_mode_but_never_the_refresh_token() -> None:
    (conn_type,) = _provider_info()["connection-types"]
    fields = conn_type["conn-fields"]
    assert set(fields) == EXTRA_FIELDS  # refresh_token is written by aps-mirror, never typed in
    assert all(field["label"] and "string" in field["schema"]["type"] for field in fields.values())
    assert fields["auth_mode"]["schema"]["enum"] == AUTH_MODES
    assert fields["auth_mode"]["schema"]["default"] == "authorization_code"
    assert fields["scopes"]["schema"]["default"] == "data:read"


def test_airflow_serves_the_form_metadata_without_importing_flask() -> None:
    rows = _cli_json("providers", "widgets")
    ours = {row["connection_parameter_name"] for row in rows if row["package_name"] == "aps-mirror"}
    assert ours == {f"extra__autodesk__{name}" for name in EXTRA_FIELDS}


def test_airflow_loads_the_ui_plugin_from_its_entry_point() -> None:
    _entry_point("airflow.plugins", PLUGIN_PATH)
    (plugin,) = [row for row in _cli_json("plugins") if row["name"] == "aps_mirror"]
    assert f"aps-mirror=={_project_version()}" in plugin["source"] and PLUGIN_PATH in plugin["source"]
    (app,) = plugin["fastapi_apps"]
    assert app["url_prefix"] == "/aps-mirror"
    assert plugin["external_views"] and all(
        view["href"].startswith("/aps-mirror/") and view["destination"] == "nav"
        for view in plugin["external_views"])
