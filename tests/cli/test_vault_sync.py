"""`aps-mirror sync` with a connection that reaches a Vault: Docs and Vault in one mirror."""

from __future__ import annotations

import json

from tests.cli.test_cli import cli, env  # noqa: F401  (the env fixture)
from tests.cli.test_validate_vault import with_vault


def vault_keys(s3, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="autodesk/vault/")
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_sync_mirrors_the_vault_beside_the_docs_projects_then_a_quiet_night_copies_nothing(
        simulator, bucket, env, s3) -> None:  # noqa: F811
    env = with_vault(env, vault_url=simulator.base_url, vault_user="sam.builder", vault_password="Builder2024")
    first = cli("sync", "--bucket", bucket, "--json", env=env)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    keys = vault_keys(s3, bucket)
    assert keys and all(k.startswith("autodesk/vault/Engineering/") for k in keys)
    assert summary["files_copied"] > len(keys) and summary["files_failed"] == 0
    assert any(name.startswith("vault_") for name in summary["api_calls"]), summary["api_calls"]
    assert "Builder2024" not in first.stdout + first.stderr

    again = cli("sync", "--bucket", bucket, "--json", env=env)
    assert again.returncode == 0, again.stderr
    quiet = json.loads(again.stdout)
    assert quiet["files_copied"] == 0 and quiet["files_failed"] == 0
    assert not any("content" in name for name in quiet["api_calls"]), quiet["api_calls"]

    docs_only = cli("sync", "--bucket", bucket, "--source", "docs", "--json", env=env)
    assert docs_only.returncode == 0, docs_only.stderr
    assert not any(name.startswith("vault_") for name in json.loads(docs_only.stdout)["api_calls"])
    assert vault_keys(s3, bucket) == keys  # not selected: neither copied nor deleted
