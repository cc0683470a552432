"""`aps-mirror restore` as a user runs it (a subprocess): exit codes, JSON, text, refusals."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from tests.cli.test_cli import cli, env  # noqa: F401  (the same servers and connections)
from tests.cli.test_prefix_everywhere import no_connections
from tests.cli.test_sync_options import assert_one_line_usage_error

PROJECT = "Riverside Tower"
FOLDER = ("Project Files", "MEP")


@pytest.fixture
def writer_env(simulator, env) -> dict[str, str]:  # noqa: F811
    """`env` plus `autodesk_writer`, a connection with the scopes restoring needs."""
    connection = json.loads(env["AIRFLOW_CONN_AUTODESK_DEFAULT"])
    connection["extra"]["scopes"] = "data:read data:write data:create"
    return {**env, "AIRFLOW_CONN_AUTODESK_WRITER": json.dumps(connection)}


def files_under(sim, path: tuple[str, ...]) -> dict[tuple[str, ...], object]:
    return {(*f.path[len(path):], f.tip.name): f.tip for f in sim.iter_files()
            if f.project == PROJECT and f.path[:len(path)] == path}


def test_restore_a_deleted_folder_then_rerun(simulator, bucket, writer_env):
    sim = simulator.sim
    assert cli("sync", "--bucket", bucket, "--project", PROJECT, "-q", env=writer_env).returncode == 0
    then = files_under(sim, FOLDER)
    sim.delete_folder(sim.folder_id(sim.project_id(PROJECT), FOLDER))
    assert cli("sync", "--bucket", bucket, "--project", PROJECT, "--max-delete", "100%", "-q",
               env=writer_env).returncode == 0
    args = ("restore", "--conn-id", "autodesk_writer", "--bucket", bucket, "--project", "riverside*",
            "--path", "/".join(FOLDER), "--into", "Project Files/Recovered/Today")

    dry = cli(*args, "--dry-run", env=writer_env)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert sum(line.startswith("would restore Project Files/MEP/") for line in lines) == len(then)
    assert not files_under(sim, ("Project Files", "Recovered"))

    result = cli(*args, "--json", env=writer_env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["files_restored"], summary["files_failed"], summary["dry_run"]) == (len(then), 0, False)
    assert summary["bytes_restored"] == sum(v.size for v in then.values())
    restored = files_under(sim, ("Project Files", "Recovered", "Today", "MEP"))
    assert restored.keys() == then.keys()
    assert all(sim.sha1(restored[k].id) == sim.sha1(then[k].id) for k in then)

    again = json.loads(cli(*args, "--json", env=writer_env).stdout)
    assert (again["files_restored"], again["files_skipped"]) == (0, len(then))


def test_missing_write_scope_exits_2_in_one_line(simulator, bucket, env):  # noqa: F811
    assert cli("sync", "--bucket", bucket, "--project", PROJECT, "-q", env=env).returncode == 0
    result = cli("restore", "--bucket", bucket, "--project", PROJECT, env=env)
    assert_one_line_usage_error(result, "needs the scopes data:write and data:create")


def test_a_version_that_cannot_be_restored_exits_1(simulator, bucket, writer_env):
    sim = simulator.sim
    assert cli("sync", "--bucket", bucket, "--project", PROJECT, "-q", env=writer_env).returncode == 0
    as_of = datetime.fromtimestamp(sim.clock.now(), tz=timezone.utc).isoformat()
    sim.advance_clock(60)
    target = next(f for f in sim.iter_files() if f.project == PROJECT and f.path == FOLDER)
    sim.add_version(target.item_id, size=999)
    assert cli("sync", "--bucket", bucket, "--project", PROJECT, "-q", env=writer_env).returncode == 0
    result = cli("restore", "--conn-id", "autodesk_writer", "--bucket", bucket, "--project", PROJECT,
                 "--path", "/".join((*FOLDER, target.tip.name)), "--as-of", as_of, env=writer_env)
    assert result.returncode == 1, result.stderr
    assert "cannot be restored as of that time" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("--into", "Project Files/X", "--in-place"), "--into and --in-place exclude each other"),
    (("--as-of", "yesterday"), "--as-of 'yesterday' is not accepted"),
    (("--as-of", "2999-01-01T00:00:00Z"), "is in the future"),
    (("--into", "/"), "--into '/' is not accepted"),
    (("--prefix", "a//b"), "--prefix 'a//b' is not accepted"),
    (("--bucket", "Not_A_Bucket"), "--bucket 'Not_A_Bucket' is not accepted"),
])
def test_bad_arguments_exit_2_in_one_line_before_any_connection(args, message):
    values = {"--bucket": "acme-docs", "--project": "x", **dict(zip(args[::2], args[1::2]))}
    words = [w for pair in values.items() for w in pair if w != "--in-place"]
    words += ["--in-place"] if "--in-place" in args else []
    result = cli("restore", *words, env=no_connections())
    assert_one_line_usage_error(result, message)
