"""Typed calls to the APS endpoints the mirror needs; pagination follows `links.next` verbatim."""

from __future__ import annotations

import logging
from typing import Any, Iterator, Mapping
from urllib.parse import quote

import requests

from aps_mirror.aps import endpoints
from aps_mirror.aps.models import Folder, Hub, Item, Project, SignedDownload, UserProfile, Version
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.errors import ApiError, ConfigError

log = logging.getLogger(__name__)

PAGE_LIMIT = 200  # APS's maximum; more is a 400
SIGNED_URL_MINUTES = 10  # long enough to start a big transfer; a started one may outlive it


def _seg(value: str) -> str:
    """URL-encode one path segment (version and folder URNs contain ':', '?' and '=')."""
    return quote(value, safe="")


class ApsClient:
    """Reads hubs, projects, folders and file versions, and signs downloads."""

    def __init__(self, transport: ApsTransport, *, page_limit: int = PAGE_LIMIT) -> None:
        self.transport = transport
        self.page_limit = page_limit

    # -- identity ---------------------------------------------------------------------------
    def user_profile(self) -> UserProfile:
        return UserProfile.from_json(self.transport.get_json("/userprofile/v1/users/@me"))

    # -- hubs and projects ------------------------------------------------------------------
    def hubs(self) -> list[Hub]:
        return [Hub.from_resource(res) for res, _ in self._pages("/project/v1/hubs")]

    def projects(self, hub_id: str) -> Iterator[Project]:
        path = f"/project/v1/hubs/{_seg(hub_id)}/projects"
        for res, _ in self._pages(path, {"page[limit]": self.page_limit}):
            yield Project.from_resource(res, hub_id)

    def top_folders(self, hub_id: str, project_id: str) -> list[Folder]:
        path = f"/project/v1/hubs/{_seg(hub_id)}/projects/{_seg(project_id)}/topFolders"
        return [Folder.from_resource(res) for res, _ in self._pages(path)]

    # -- folders and items ------------------------------------------------------------------
    def folder(self, project_id: str, folder_id: str) -> Folder:
        """One folder; a project's root folder carries the rollup of the whole project."""
        path = f"/data/v1/projects/{_seg(project_id)}/folders/{_seg(folder_id)}"
        return Folder.from_resource(self.transport.get_json(path)["data"])

    def folder_contents(self, project_id: str, folder_id: str, *,
                        include_hidden: bool = False) -> Iterator[Folder | Item]:
        """Every folder and item directly in a folder, items carrying their tip version."""
        path = f"/data/v1/projects/{_seg(project_id)}/folders/{_seg(folder_id)}/contents"
        params: dict[str, Any] = {"page[limit]": self.page_limit}
        if include_hidden:
            params["includeHidden"] = "true"
        for res, included in self._pages(path, params):
            if res.get("type") == "folders":
                yield Folder.from_resource(res)
            elif res.get("type") == "items":
                yield Item.from_resource(res, included)

    def tip_version(self, project_id: str, item_id: str) -> Version:
        """The tip of one item (50 rpm at Autodesk: only when the listing lacked it)."""
        path = f"/data/v1/projects/{_seg(project_id)}/items/{_seg(item_id)}/tip"
        return Version.from_resource(self.transport.get_json(path)["data"])

    def item_versions(self, project_id: str, item_id: str) -> Iterator[Version]:
        """Every version of one item, newest first (for versions=all)."""
        path = f"/data/v1/projects/{_seg(project_id)}/items/{_seg(item_id)}/versions"
        for res, _ in self._pages(path, {"page[limit]": self.page_limit}):
            if res.get("type") == "versions":
                yield Version.from_resource(res)

    # -- downloads --------------------------------------------------------------------------
    def signed_download(self, version: Version, minutes: int = SIGNED_URL_MINUTES) -> SignedDownload:
        location = version.storage_location()
        if location is None:
            raise ApiError(f"Version {version.id} has no downloadable storage "
                           f"({version.extension_type}); it will be recorded and skipped.",
                           status=404, endpoint="signeds3download")
        bucket, key = location
        path = f"/oss/v2/buckets/{_seg(bucket)}/objects/{_seg(key)}/signeds3download"
        body = self.transport.get_json(path, {"minutesExpiration": minutes})
        return SignedDownload.from_json(body)

    def open_signed_url(self, url: str, start: int = 0, end: int | None = None) -> requests.Response:
        """Stream the bytes behind a signed URL (no APS auth header), from byte `start` to
        byte `end` included (to the last byte when None)."""
        wanted = f"bytes={start}-{'' if end is None else end}"
        headers = {"Range": wanted} if start or end is not None else None
        return self.transport.request("GET", url, headers=headers, authenticated=False,
                                      stream=True, endpoint=endpoints.SIGNED_URL_DOWNLOAD)

    # -- paging -----------------------------------------------------------------------------
    def _pages(self, path: str, params: Mapping[str, Any] | None = None
               ) -> Iterator[tuple[dict[str, Any], dict[str, Version]]]:
        """Yield (resource, included tip versions of its page) across every page.

        Filters apply after paging at Autodesk, so short or empty pages are normal; the only
        end signal is a missing `links.next`, which is followed verbatim.
        """
        next_url: str | None = path
        first = True
        while next_url:
            body = self.transport.get_json(next_url, params if first else None)
            first = False
            for warning in (body.get("meta") or {}).get("warnings") or []:
                log.warning("APS warned on %s: %s", path, _describe_warning(warning))
            included = {
                res["id"]: Version.from_resource(res)
                for res in body.get("included") or []
                if res.get("type") == "versions"
            }
            data = body.get("data") or []
            for res in data if isinstance(data, list) else [data]:
                yield res, included
            next_url = _next_link(body)


def _next_link(body: dict[str, Any]) -> str | None:
    link = (body.get("links") or {}).get("next")
    if isinstance(link, dict):
        link = link.get("href")
    return link or None


def _describe_warning(warning: Any) -> str:
    if isinstance(warning, dict):
        return str(warning.get("Detail") or warning.get("detail") or warning.get("Title")
                   or warning.get("Message") or warning)
    return str(warning)


def require_scopes(client: ApsClient, scopes: tuple[str, ...], doing: str) -> None:
    """Refuse at once, in one line, when the connection does not ask for `scopes` (what
    `doing`, e.g. "Restoring", needs): before any call Autodesk would refuse halfway."""
    connection = client.transport.connection
    if not set(scopes) <= set(connection.scopes):
        raise ConfigError(f"{doing} writes to Autodesk: connection {connection.conn_id!r} needs the scopes "
                          f"{' and '.join(scopes)} (it has {' '.join(connection.scopes) or 'none'}); add "
                          "them to its extra.scopes (and authorize a user connection again), then run again.")
