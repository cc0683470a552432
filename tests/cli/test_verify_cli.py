"""`aps-mirror verify` as a user runs it (a subprocess): exit codes, JSON, text, the catalog row."""

from __future__ import annotations

import json

import pytest

from aps_mirror.catalog import reader
from tests.cli.test_cli import cli, env  # noqa: F401  (the same servers and connections)
from tests.cli.test_prefix_everywhere import no_connections
from tests.cli.test_sync_options import assert_one_line_usage_error

PREFIX = "autodesk"  # sync's default


@pytest.fixture
def synced(simulator, bucket, env, s3) -> dict[str, dict]:  # noqa: F811
    """The Drone Gimbal project mirrored by `aps-mirror sync`: item id -> manifest entry."""
    result = cli("sync", "--bucket", bucket, "--project", "Drone*", "-q", env=env)
    assert result.returncode == 0, result.stderr
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/_aps_mirror/manifests/")
    [manifest] = [o["Key"] for o in listing["Contents"]]
    return json.loads(s3.get_object(Bucket=bucket, Key=manifest)["Body"].read())["items"]


def test_a_clean_mirror_exits_0_and_is_recorded(synced, bucket, env, s3):  # noqa: F811
    result = cli("verify", "--bucket", bucket, "--deep", "--conn-id", "autodesk_default", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["clean"] is True and report["against_autodesk"] and report["deep"]
    assert report["objects_checked"] == report["objects_read"] == len(synced)
    assert [(p["project_name"], p["objects_checked"]) for p in report["projects"]] == [("Drone Gimbal", len(synced))]
    assert all(report[c] == [] for c in ("missing", "corrupt", "orphans", "outdated", "not_mirrored",
                                         "stale_uploads"))
    rows = reader.read_table(s3, bucket, PREFIX, "verifications").to_pylist()
    assert report["catalog"] and [r["verification_id"] for r in rows] == [report["verification_id"]]
    assert rows[0]["clean"] and rows[0]["objects_checked"] == len(synced)


def test_faults_exit_1_with_each_in_its_category(simulator, synced, bucket, env, s3):  # noqa: F811
    (gone_id, gone), (old_id, old) = sorted(synced.items())[:2]
    s3.delete_object(Bucket=bucket, Key=gone["key"])
    simulator.sim.add_version(old_id, size=1234)
    result = cli("verify", "--bucket", bucket, "--conn-id", "autodesk_default", "--json", env=env)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["clean"] is False
    assert [(f["key"], f["item_id"], f["path"]) for f in report["missing"]] == [(gone["key"], gone_id, gone["source_path"])]
    assert [(f["key"], f["item_id"]) for f in report["outdated"]] == [(old["key"], old_id)]
    assert all(report[c] == [] for c in ("corrupt", "orphans", "not_mirrored", "stale_uploads"))
    [row] = reader.read_table(s3, bucket, PREFIX, "verifications").to_pylist()
    assert (row["clean"], row["missing"], row["outdated"]) == (False, 1, 1)

    # Without --conn-id, only what S3 shows; the text report names the fault under its category.
    text = cli("verify", "--bucket", bucket, env=env)
    assert text.returncode == 1
    lines = text.stdout.splitlines()
    assert "NOT CLEAN: 1 missing" in lines[0] and "outdated" not in text.stdout
    assert lines[1] == "missing (1):" and lines[2].startswith(f"  {gone['key']}  [")


@pytest.mark.parametrize(("args", "message"), [
    (("--prefix", "a//b"), "--prefix 'a//b' is not accepted"),
    (("--bucket", "Not_A_Bucket"), "--bucket 'Not_A_Bucket' is not accepted"),
    (("--sample", "0"), "--sample '0' is not accepted"),
    (("--sample", "many"), "--sample 'many' is not accepted"),
    (("--workers", "0"), "--workers '0' is not accepted"),
])
def test_bad_arguments_exit_2_in_one_line_before_any_connection(args, message):
    values = {"--bucket": "acme-docs", **dict(zip(args[::2], args[1::2]))}
    result = cli("verify", *[word for pair in values.items() for word in pair], env=no_connections())
    assert_one_line_usage_error(result, message)


def test_a_prefix_without_a_mirror_exits_2(simulator, bucket, env):  # noqa: F811
    result = cli("verify", "--bucket", bucket, "--prefix", "nothing/here", env=env)
    assert_one_line_usage_error(result, "holds no manifest", "check --bucket and --prefix")
