"""`aps-mirror validate`: call each sample endpoint and say which capability works."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from typing import Callable

from aps_mirror.aps.client import ApsClient
from aps_mirror.cli.common import ExitCode, aps_client
from aps_mirror.connection import DEFAULT_CONN_ID
from aps_mirror.errors import ApiError, ApsMirrorError


@dataclass
class Check:
    capability: str
    ok: bool
    detail: str


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conn-id", default=DEFAULT_CONN_ID)
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    checks = validate(aps_client(args.conn_id))
    if args.json:
        json.dump([asdict(c) for c in checks], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for check in checks:
            print(f"[{'ok' if check.ok else 'FAIL':>4}] {check.capability}: {check.detail}")
    essential = [c for c in checks if c.capability != "user profile"]
    return ExitCode.OK if all(c.ok for c in essential) else ExitCode.FAILED


def validate(client: ApsClient) -> list[Check]:
    """Run the sample calls in order; each later one uses what the earlier ones found."""
    checks: list[Check] = []
    found: dict[str, object] = {}

    def attempt(capability: str, call: Callable[[], str]) -> None:
        try:
            checks.append(Check(capability, True, call()))
        except ApiError as exc:
            checks.append(Check(capability, False, str(exc)))
        except ApsMirrorError as exc:
            checks.append(Check(capability, False, str(exc)))

    def profile() -> str:
        try:
            user = client.user_profile()
        except ApiError as exc:
            if exc.status in (401, 403):
                return "not available to a 2-legged (client credentials) token; that is expected"
            raise
        return f"signed in as {user.user_name or user.user_id} <{user.email or '?'}>"

    def hubs() -> str:
        found["hubs"] = hubs_ = client.hubs()
        if not hubs_:
            raise ApsMirrorError("no hub visible: for ACC/BIM 360, add the app as a custom "
                                 "integration in the account admin; for Fusion, check the user's teams")
        return ", ".join(f"{h.name} ({h.id[:2]})" for h in hubs_)

    def projects() -> str:
        for hub in found.get("hubs", []):
            projects_ = list(client.projects(hub.id))
            if projects_:
                found["project"] = projects_[0]
                return f"{len(projects_)} in {hub.name}"
        raise ApsMirrorError("no project visible in any hub: check the user's project membership")

    def contents() -> str:
        project = found["project"]
        tops = client.top_folders(project.hub_id, project.id)
        stack = list(tops)
        listed = 0
        while stack and "file" not in found:
            folder = stack.pop(0)
            for child in client.folder_contents(project.id, folder.id):
                listed += 1
                if getattr(child, "tip", None) is not None and child.tip.storage_location():
                    found["file"] = child
                    break
                if hasattr(child, "last_modified_rollup"):
                    stack.append(child)
        return f"{len(tops)} top folder(s) in {project.name}, {listed} entries read"

    def download() -> str:
        item = found.get("file")
        if item is None:
            raise ApsMirrorError("no downloadable file found to try")
        signed = client.signed_download(item.tip)
        with client.open_signed_url(signed.url) as response:
            first = next(response.iter_content(1024), b"")
        return f"signed URL for {item.tip.name} works ({signed.status}, {len(first)} bytes read)"

    attempt("user profile", profile)
    attempt("hubs", hubs)
    if "hubs" in found:
        attempt("projects", projects)
    if "project" in found:
        attempt("folder contents", contents)
        attempt("download", download)
    return checks
