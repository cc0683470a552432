"""`make demo`: run the aps_mirror DAG end to end on embedded defaults, three times.

Starts the APS simulator (Autodesk Docs and a Vault) and moto's S3 server on free local ports,
points the Airflow connections at them through AIRFLOW_CONN_* variables, runs `airflow dags test aps_mirror`
on SQLite, prints the mirrored tree, checks every file byte for byte against the
simulator, runs the DAG again (it must copy nothing), changes two files in the simulator
and runs it a third time (one download, one rename inside S3), answers two questions from
the Parquet catalog with DuckDB, and stops the servers (`APS_MIRROR_DEMO_KEEP=1` leaves
them running and prints how to reach them).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import boto3
import requests

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORK = Path(os.environ.get("APS_MIRROR_DEMO_DIR", REPO / ".demo"))
BUCKET = "aps-mirror-demo"
PREFIX = "autodesk"
VAULT_USER, VAULT_PASSWORD = "sam.builder", "Builder2024"  # a user of the simulator's demo Vault


def say(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_simulator(log_file) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([str(BIN / "aps-mirror"), "simulator", "serve", "--port", "0",
                             "--seed", "demo"], stdout=subprocess.PIPE, stderr=log_file, text=True)
    first_line = proc.stdout.readline()
    if not first_line:
        raise SystemExit(f"the APS simulator did not start; see {log_file.name}")
    return proc, json.loads(first_line)


def start_s3(log_file) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.get(url, timeout=1)
            return proc, url
        except requests.ConnectionError:
            time.sleep(0.05)
    raise SystemExit(f"moto's S3 server did not start; see {log_file.name}")


# Lines of an `airflow dags test` log worth showing: ours, and how the run ended.
SHOWN = re.compile(r"aps_mirror\.(mirror|progress)|project\(s\) to mirror|aps_mirror (dry )?run:|"
                   r"^\d+ project\(s\):|DagRun Finished|ERROR|error  \]")


def airflow(env: dict[str, str], *args: str, log_name: str | None = None) -> None:
    """Run an airflow command; its full output goes to a log file, the telling lines to the screen."""
    log_path = WORK / "logs" / f"{log_name or args[0]}.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen([str(BIN / "airflow"), *args], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            log_file.write(line)
            if log_name and SHOWN.search(line):
                print("    " + _strip_airflow_decoration(line), flush=True)
    if proc.wait() != 0:
        raise SystemExit(f"`airflow {' '.join(args)}` failed; its full output is in {log_path}")


def _strip_airflow_decoration(line: str) -> str:
    """Keep the message of a structlog line: drop the timestamp, level and trailing fields."""
    match = re.match(r"^\S+Z \[(\w+)\s*\] (.*?)(\s+\[[\w.]+\]( \w+=.*)?)?$", line.rstrip())
    if not match:  # a continuation line of a multi-line message
        return re.sub(r"\s+\[unusual_prefix_\w+\].*$", "", line.rstrip())
    level, message = match.group(1), match.group(2)
    finished = re.search(r"DagRun Finished: .*run_duration=([\d.]+), state=(\w+)", message)
    if finished:
        return f"DAG run finished: {finished.group(2)} in {float(finished.group(1)):.1f}s"
    return message if level == "info" else f"{level.upper()}: {message}"


def sim_stats(base_url: str) -> dict:
    stats = requests.get(f"{base_url}/_sim/stats", timeout=10).json()
    # Files read: Docs' signed-URL downloads and Vault's content reads alike.
    stats["reads"] = stats["downloads"]
    return stats


def default_top_folders(sim: dict) -> set[tuple[str, str, str]]:
    """(hub, project, top folder) the DAG's default selection walks, asked of the simulator's
    APS API and decided by the mirror's own rule: "Project Files" only in ACC hubs, every
    non-system top folder in the others."""
    from aps_mirror.aps.client import ApsClient
    from aps_mirror.aps.transport import ApsTransport
    from aps_mirror.connection import ApsConnection, AuthMode
    from aps_mirror.mirror.selection import select_top_folders

    client = ApsClient(ApsTransport(ApsConnection(
        conn_id="demo", client_id=sim["client_id"], client_secret=sim["client_secret"],
        base_url=sim["base_url"], auth_mode=AuthMode.CLIENT_CREDENTIALS)))
    selected = set()
    for hub in client.hubs():
        for project in client.projects(hub.id):
            for top in select_top_folders(client.top_folders(hub.id, project.id), (), hub.extension_type):
                selected.add((hub.name, project.name, top.name))
    return selected


def verify_byte_identical(s3, sim: dict) -> tuple[int, int]:
    """Compare every mirrored object with the bytes the simulator serves for its version.

    Returns (files checked, simulator files the default selection leaves out)."""
    every = requests.get(f"{sim['base_url']}/_sim/files", timeout=30).json()["files"]
    tops = default_top_folders(sim)
    truth = [f for f in every if (f["hub"], f["project"], f["path"][0]) in tops]
    checked = 0
    manifests = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/_aps_mirror/manifests/")
    mirrored, vaults = {}, []
    for obj in manifests.get("Contents", []):
        manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
        if manifest.get("source", "docs") == "vault":
            vaults.append(manifest)
        else:
            mirrored.update(manifest["items"])
    missing = [f for f in truth if f["item_id"] not in mirrored]
    if missing:
        raise SystemExit(f"{len(missing)} simulator files are not in the mirror, e.g. {missing[0]}")
    extra = set(mirrored) - {f["item_id"] for f in truth}
    if extra:
        raise SystemExit(f"{len(extra)} mirrored files are outside the default selection, "
                         f"e.g. {mirrored[min(extra)]['key']}")
    for f in truth:
        entry = mirrored[f["item_id"]]
        body = s3.get_object(Bucket=BUCKET, Key=entry["key"])["Body"].read()
        if entry["version_id"] != f["version_id"] or hashlib.sha1(body).hexdigest() != f["sha1"] \
                or len(body) != f["size"]:
            raise SystemExit(f"mirror differs from the simulator for {entry['key']}")
        checked += 1
    return checked + verify_vault_identical(s3, sim, vaults), len(every) - len(truth)


def verify_vault_identical(s3, sim: dict, manifests: list[dict]) -> int:
    """The Vault side: every file the demo user may see, at its latest checked-in version,
    byte for byte (SHA-256, since Vault gives no checksum)."""
    truth = requests.get(f"{sim['base_url']}/_sim/vault/files", timeout=30).json()["files"]
    mirrored = {item_id: (m["project_id"], entry) for m in manifests for item_id, entry in m["items"].items()
                if not entry.get("deleted_at")}
    if {f["file_id"] for f in truth} != set(mirrored):
        raise SystemExit(f"the mirror holds {len(mirrored)} Vault files, the simulator's Vault {len(truth)}")
    for f in truth:
        vault_id, entry = mirrored[f["file_id"]]
        body = s3.get_object(Bucket=BUCKET, Key=entry["key"])["Body"].read()
        expected = requests.get(f"{sim['base_url']}/_sim/vault/{vault_id}/file-versions/{f['version_id']}/sha256",
                                timeout=10).json()["sha256"]
        if entry["version_id"] != f["version_id"] or hashlib.sha256(body).hexdigest() != expected:
            raise SystemExit(f"mirror differs from the simulator's Vault for {entry['key']}")
    return len(truth)


def change_a_vault_file(sim: dict, s3) -> str:
    """Check in a new version of one mirrored Vault file, through the simulator's control API."""
    from aps_mirror.catalog import reader

    con = reader.connect(s3, BUCKET, PREFIX, tables=("files",))
    [(item_id, path, vault_id)] = con.sql(
        "SELECT item_id, path, project_id FROM files WHERE source = 'vault' AND status = 'mirrored' "
        "ORDER BY size, path LIMIT 1").fetchall()
    requests.post(f"{sim['base_url']}/_sim/vault/{quote(vault_id, safe='')}/files/{quote(item_id, safe='')}/versions",
                  json={"size": 6144}, timeout=10).raise_for_status()
    return path


def change_two_files(sim: dict, s3) -> tuple[str, str]:
    """Through the simulator's control API: a new version of one mirrored file, a rename of another."""
    from aps_mirror.catalog import reader

    con = reader.connect(s3, BUCKET, PREFIX, tables=("files",))
    (first_id, first_path), (second_id, second_path) = con.sql(
        "SELECT item_id, path FROM files WHERE status = 'mirrored' AND project_name = 'Riverside Tower' "
        "AND (name LIKE '%.dwg' OR name LIKE '%.pdf') ORDER BY name LIMIT 2").fetchall()
    base = sim["base_url"]
    requests.post(f"{base}/_sim/items/{quote(first_id, safe='')}/versions", json={"size": 4096},
                  timeout=10).raise_for_status()
    new_name = "Renamed - " + second_path.rsplit("/", 1)[-1]
    requests.patch(f"{base}/_sim/items/{quote(second_id, safe='')}", json={"name": new_name},
                   timeout=10).raise_for_status()
    return first_path, f"{second_path} renamed to {new_name!r}"


def ask_the_catalog(s3) -> None:
    """The demo's last word: questions an analyst would ask, answered by DuckDB."""
    from aps_mirror.catalog import examples, reader

    con = reader.connect(s3, BUCKET, PREFIX)
    for title, sql in (("Docs and Vault side by side", examples.FILES_BY_SOURCE),
                       ("The ten largest files", examples.LARGEST_FILES),
                       ("What the last run changed", examples.CHANGED_IN_LATEST_RUN)):
        columns, rows = examples.ask(con, sql)
        print(f"\n    {title}:\n    " + "\n    ".join(sql.strip().splitlines()) + "\n")
        print("    " + examples.format_rows(columns, rows).replace("\n", "\n    "))


def main() -> int:
    keep = os.environ.get("APS_MIRROR_DEMO_KEEP") == "1"
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True)
    sim_log = open(WORK / "logs" / "simulator.log", "w")
    s3_log = open(WORK / "logs" / "s3.log", "w")
    processes: list[subprocess.Popen] = []
    try:
        say("Starting the APS simulator and a local S3 endpoint (moto)")
        sim_proc, sim = start_simulator(sim_log)
        processes.append(sim_proc)
        s3_proc, s3_url = start_s3(s3_log)
        processes.append(s3_proc)
        print(f"    APS simulator: {sim['base_url']}\n    S3 endpoint:   {s3_url}")
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1",
                          aws_access_key_id="demo-key", aws_secret_access_key="demo-secret")
        s3.create_bucket(Bucket=BUCKET)

        env = dict(os.environ)
        env.update({
            "AIRFLOW_HOME": str(WORK / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW_CONN_AUTODESK_DEFAULT": json.dumps({
                "conn_type": "autodesk", "host": sim["base_url"], "login": sim["client_id"],
                "password": sim["client_secret"],
                "extra": {"auth_mode": "client_credentials", "scopes": "data:read",
                          # The simulator's Vault, signed in with a Vault account (an app token
                          # has no user, which Vault requires).
                          "vault_url": sim["base_url"], "vault_user": VAULT_USER,
                          "vault_password": VAULT_PASSWORD}}),
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({
                "conn_type": "aws", "login": "demo-key", "password": "demo-secret",
                "extra": {"endpoint_url": s3_url, "region_name": "us-east-1"}}),
            "APS_MIRROR_BUCKET": BUCKET,
            "APS_MIRROR_PREFIX": PREFIX,
            # `airflow dags test` (Airflow 3.3.2) exits 1 after a successful run of a DAG that has
            # a deadline (apache/airflow#73428); the demo's runs are manual anyway.
            "APS_MIRROR_DEADLINE": "off",
        })
        say("Preparing Airflow (SQLite metadata database in .demo/airflow)")
        airflow(env, "db", "migrate")
        airflow(env, "pools", "set", "autodesk_api", "4", "APS API concurrency")

        say("Run 1: airflow dags test aps_mirror (first full copy)")
        before = sim_stats(sim["base_url"])
        airflow(env, "dags", "test", "aps_mirror", log_name="run-1")
        first = sim_stats(sim["base_url"])
        say("What was mirrored")
        from aps_mirror.cli.tree import render_tree

        print(render_tree(s3, BUCKET, PREFIX))
        checked, left_out = verify_byte_identical(s3, sim)
        print(f"\n    {checked} files (Docs and Vault) byte-identical to the simulator "
              f"({first['reads'] - before['reads']} reads); {left_out} left out by the "
              "default selection (ACC Plans: top_folders=[\"Project Files\", \"Plans\"] adds them)")

        say("Run 2: nothing changed, so nothing may be copied")
        airflow(env, "dags", "test", "aps_mirror", log_name="run-2")
        second = sim_stats(sim["base_url"])
        copied_again = second["reads"] - first["reads"]
        print(f"    files downloaded on the second run: {copied_again}")
        if copied_again:
            raise SystemExit("the second run copied files although nothing changed")

        say("Run 3: in Autodesk, one file gets a new version and another is renamed; in Vault, one is checked in")
        changed, renamed = change_two_files(sim, s3)
        checked_in = change_a_vault_file(sim, s3)
        print(f"    new version of {changed}; {renamed}; new Vault version of {checked_in}")
        airflow(env, "dags", "test", "aps_mirror", log_name="run-3")
        third = sim_stats(sim["base_url"])
        downloads = third["reads"] - second["reads"]
        print(f"    files read on the third run: {downloads} (the rename is a copy inside S3)")
        if downloads != 2:
            raise SystemExit(f"the third run read {downloads} files; only the two new versions should be")
        verify_byte_identical(s3, sim)

        say("Ask the catalog (DuckDB over the Parquet tables in _aps_mirror/catalog/)")
        ask_the_catalog(s3)

        say("Look at it yourself")
        if keep:
            print(f"    export AIRFLOW_CONN_AWS_DEFAULT='{env['AIRFLOW_CONN_AWS_DEFAULT']}'\n"
                  f"    export AIRFLOW_CONN_AUTODESK_DEFAULT='{env['AIRFLOW_CONN_AUTODESK_DEFAULT']}'\n"
                  f"    .venv/bin/aps-mirror tree --bucket {BUCKET} --prefix {PREFIX}\n"
                  f"    .venv/bin/aps-mirror sync --bucket {BUCKET} --prefix {PREFIX} --dry-run")
            print(f"    Full logs: {WORK / 'logs'} (and Airflow's task logs in {WORK / 'airflow' / 'logs'})")
            print(f"    servers left running (pids {sim_proc.pid}, {s3_proc.pid}); "
                  f"stop them with: kill {sim_proc.pid} {s3_proc.pid}")
        else:
            print(f"    Full logs: {WORK / 'logs'} (and Airflow's task logs in {WORK / 'airflow' / 'logs'})\n"
                  "    Run `APS_MIRROR_DEMO_KEEP=1 make demo` to keep the simulator and S3 running "
                  "and get commands to browse the mirror.")
        return 0
    finally:
        if not keep:
            for proc in processes:
                proc.send_signal(signal.SIGTERM)
            for proc in processes:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    sys.exit(main())
