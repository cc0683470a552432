"""`aps-mirror validate` checks the Vault a connection reaches (extra.vault_url) after APS."""

from __future__ import annotations

import json

from tests.cli.test_cli import cli, env  # noqa: F401  (the env fixture)

VAULT_CHECKS = ["vault server", "vaults", "vault folders", "vault files", "vault download"]


def with_vault(env: dict[str, str], **vault_extra: object) -> dict[str, str]:
    conn = json.loads(env["AIRFLOW_CONN_AUTODESK_DEFAULT"])
    conn["extra"].update(vault_extra)
    return {**env, "AIRFLOW_CONN_AUTODESK_DEFAULT": json.dumps(conn)}


def test_validate_checks_the_vault_after_aps(simulator, env) -> None:
    env = with_vault(env, vault_url=simulator.base_url, vault_user="sam.builder", vault_password="Builder2024")
    result = cli("validate", "--json", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    checks = json.loads(result.stdout)
    assert [c["capability"] for c in checks][-5:] == VAULT_CHECKS
    by_name = {c["capability"]: c for c in checks}
    assert all(by_name[name]["ok"] for name in VAULT_CHECKS), checks
    assert by_name["vaults"]["detail"].startswith("1 of 1 selected: Engineering")
    assert by_name["vault download"]["detail"].endswith("1024 bytes read")
    assert "Builder2024" not in result.stdout + result.stderr


def test_a_selection_that_matches_no_vault_fails_validation_and_says_what_is_there(simulator, env) -> None:
    env = with_vault(env, vault_url=simulator.base_url, vault_user="sam.builder", vault_password="Builder2024",
                     vaults=["Archive*"])
    result = cli("validate", env=env)
    assert result.returncode == 1, result.stderr + result.stdout
    assert ("[FAIL] vaults: none of the 1 vault(s) matches the connection's extra.vaults (Archive*): "
            "visible are Engineering") in result.stdout
    assert "vault folders" not in result.stdout


def test_a_wrong_vault_password_fails_the_vault_checks_only(simulator, env) -> None:
    env = with_vault(env, vault_url=simulator.base_url, vault_user="sam.builder", vault_password="Wrong2024x")
    result = cli("validate", env=env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("[  ok] download:") for line in lines)
    assert any(line.startswith("[FAIL] vault folders: Vault refused to sign 'sam.builder' in") for line in lines)
    assert "Wrong2024x" not in result.stdout + result.stderr
