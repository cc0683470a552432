"""Which capabilities a connection has: the sample calls of Autodesk's app setup guide.

Used by `aps-mirror validate` and by the connection's "Test" button in Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from aps_mirror.aps.client import ApsClient
from aps_mirror.errors import ApiError, ApsMirrorError

# A 2-legged token has no user: the profile check may fail without the connection being broken.
OPTIONAL = frozenset({"user profile"})


@dataclass
class Check:
    capability: str
    ok: bool
    detail: str


def all_essential_ok(checks: list[Check]) -> bool:
    return all(c.ok for c in checks if c.capability not in OPTIONAL)


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
                return (f"not available (HTTP {exc.status}): expected, a 2-legged app token "
                        "does not belong to a user")
            raise
        return f"signed in as {user.user_name or user.user_id} <{user.email or '?'}>"

    def hubs() -> str:
        found["hubs"] = hubs_ = client.hubs()
        if not hubs_:
            raise ApsMirrorError("no hub visible: for ACC/BIM 360, add the app as a custom "
                                 "integration in the account admin; for Fusion, check the user's teams")
        return f"{len(hubs_)} visible: " + ", ".join(f"{h.name} ({h.id[:2]})" for h in hubs_)

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
