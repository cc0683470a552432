"""`--prefix` and `--bucket` follow sync's rule in every command that reads the mirror:
`tree`, `report` and `catalog publish|fold|download` refuse a bad value in one line, exit 2,
before any connection is looked up, with the very line `sync` prints."""

from __future__ import annotations

import json
import os

import pytest

from tests.cli.test_cli import cli, env  # noqa: F401  (the same servers and connections)
from tests.cli.test_sync_options import assert_one_line_usage_error

COMMANDS = [("tree",), ("report",), ("catalog", "publish"), ("catalog", "fold"), ("catalog", "download")]
# Each kind of refusal once (tests/cli/test_sync_options.py goes through the rule's cases).
BAD_PREFIXES = ["../x", "a//b", "M/_APS_mirror", "a\tb"]
BAD_BUCKETS = ["Not_A_Bucket", "192.168.0.1"]


def no_connections() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}


def argv(command: tuple[str, ...], folder) -> list[str]:
    """The command's words, with the folder `catalog download` must be given."""
    return [*command, "--to", str(folder / "copy")] if command[-1] == "download" else list(command)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("prefix", BAD_PREFIXES)
def test_a_bad_prefix_is_refused_like_sync_refuses_it(command, prefix, tmp_path):
    # No connection is defined: the prefix is refused before anything is looked up.
    result = cli(*argv(command, tmp_path), "--bucket=acme-docs", f"--prefix={prefix}", env=no_connections())
    assert_one_line_usage_error(result, f"--prefix {prefix!r} is not accepted")
    assert not (tmp_path / "copy").exists()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("bucket", BAD_BUCKETS)
def test_a_bad_bucket_is_refused_like_sync_refuses_it(command, bucket, tmp_path):
    result = cli(*argv(command, tmp_path), f"--bucket={bucket}", env=no_connections())
    assert_one_line_usage_error(result, f"--bucket {bucket!r} is not accepted")


@pytest.mark.parametrize("flag, value", [("--prefix", "a//b"), ("--bucket", "Not_A_Bucket")])
def test_every_command_prints_syncs_own_line(flag, value, tmp_path):
    """One rule: the refusal is word for word the one `sync` prints."""
    values = ["--bucket=acme-docs", f"{flag}={value}"]
    expected = cli("sync", *values, env=no_connections()).stderr
    assert expected.startswith(f"aps-mirror: error: {flag} {value!r} is not accepted")
    for command in COMMANDS:
        assert cli(*argv(command, tmp_path), *values, env=no_connections()).stderr == expected, command


def test_a_nested_prefix_is_read_where_sync_wrote_it(simulator, bucket, env, tmp_path):  # noqa: F811
    prefix = "mirrors/aps"
    synced = cli("sync", "--bucket", bucket, "--prefix", prefix, "--project", "Drone*", "--json", env=env)
    assert synced.returncode == 0, synced.stderr
    copied = json.loads(synced.stdout)["files_copied"]
    assert copied > 0

    tree = cli("tree", "--bucket", bucket, "--prefix", prefix, env=env)
    assert tree.returncode == 0, tree.stderr
    assert tree.stdout.splitlines()[0] == f"s3://{bucket}/{prefix}/"
    assert f"{copied} files" in tree.stdout and "Drone Gimbal/" in tree.stdout
    elsewhere = cli("tree", "--bucket", bucket, env=env)  # the default prefix holds nothing
    assert elsewhere.returncode == 0 and "0 files" in elsewhere.stdout

    report = cli("report", "--bucket", bucket, "--prefix", prefix, "--json", env=env)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["totals"]["files"] == copied

    folded = cli("catalog", "fold", "--bucket", bucket, "--prefix", prefix, "--json", env=env)
    assert folded.returncode == 0, folded.stderr
    copy = tmp_path / "copy"
    downloaded = cli("catalog", "download", "--bucket", bucket, "--prefix", prefix, "--to", str(copy), env=env)
    assert downloaded.returncode == 0, downloaded.stderr
    assert list(copy.glob("files/*/*.parquet")), "the catalog of the nested prefix was copied"
