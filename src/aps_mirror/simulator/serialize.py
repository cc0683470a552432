"""Model objects -> Autodesk JSON:API documents (shapes follow Autodesk's OpenAPI specs)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .clock import iso
from .model import Reservation
from .state import ACC, BUCKET, Folder, Hub, Item, Project, User, Version

JSONAPI = {"version": "1.0"}
Doc = dict[str, Any]


def q(value: str) -> str:
    """URL-encode an id for use as one path segment (``:``, ``?``, ``=`` included)."""
    return quote(value, safe="")


def _link(href: str) -> dict[str, str]:
    return {"href": href}


def _extension(ext_type: str, base: str, data: dict[str, Any] | None = None) -> Doc:
    return {"type": ext_type, "version": "1.0",
            "schema": _link(f"{base}/schema/v1/versions/{q(ext_type)}-1.0"), "data": data or {}}


def _who(user: User, prefix: str) -> dict[str, str]:
    return {f"{prefix}UserId": user.user_id, f"{prefix}UserName": user.full_name}


def document(self_href: str, data: Any, **extra: Any) -> Doc:
    doc: Doc = {"jsonapi": JSONAPI, "links": {"self": _link(self_href)}, "data": data}
    doc.update(extra)
    return doc


def tip_document(self_href: str, data: Any) -> Doc:
    """``GET .../tip``: Autodesk's spec types ``links`` as a bare link (``links.href``) while the
    other documents use ``links.self.href``; carry both so either reading works."""
    return {"jsonapi": JSONAPI, "links": {"self": _link(self_href), "href": self_href}, "data": data}


# ---- hubs and projects
def hub_url(base: str, hub: Hub) -> str:
    return f"{base}/project/v1/hubs/{q(hub.id)}"


def hub(base: str, h: Hub) -> Doc:
    rel: Doc = {"projects": {"links": {"related": _link(f"{hub_url(base, h)}/projects")}}}
    if h.kind != ACC:
        rel["pimCollection"] = {"data": {"type": "collection", "id": "co." + h.id[2:14]}}
    return {"type": "hubs", "id": h.id,
            "attributes": {"name": h.name, "extension": _extension(h.ext_type, base), "region": h.region},
            "links": {"self": _link(hub_url(base, h))}, "relationships": rel}


def project(base: str, p: Project) -> Doc:
    assert p.root is not None
    url = f"{hub_url(base, p.hub)}/projects/{q(p.id)}"
    if p.kind == ACC:
        ext = _extension("projects:autodesk.bim360:Project", base, {"projectType": "ACC"})
        web = f"https://acc.autodesk.com/docs/files/projects/{p.id[2:]}"
    else:
        ext = _extension("projects:autodesk.core:Project", base)
        web = f"https://fusion.autodesk.com/g/projects/{p.id}"
    return {"type": "projects", "id": p.id,
            "attributes": {"name": p.name, "scopes": ["global"], "extension": ext},
            "links": {"self": _link(url), "webView": _link(web)},
            "relationships": {
                "hub": {"data": {"type": "hubs", "id": p.hub.id}, "links": {"related": _link(hub_url(base, p.hub))}},
                "rootFolder": {"data": {"type": "folders", "id": p.root.id},
                               "meta": {"link": _link(folder_url(base, p.root))}},
                "topFolders": {"links": {"related": _link(f"{url}/topFolders")}},
            }}


# ---- folders, items, versions
def _data_url(base: str, project_id: str) -> str:
    return f"{base}/data/v1/projects/{q(project_id)}"


def folder_url(base: str, f: Folder) -> str:
    return f"{_data_url(base, f.project.id)}/folders/{q(f.id)}"


def item_url(base: str, i: Item) -> str:
    return f"{_data_url(base, i.project.id)}/items/{q(i.id)}"


def version_url(base: str, v: Version) -> str:
    return f"{_data_url(base, v.item.project.id)}/versions/{q(v.id)}"


def _refs(url: str) -> Doc:
    return {"refs": {"links": {"self": _link(f"{url}/relationships/refs"), "related": _link(f"{url}/refs")}},
            "links": {"links": {"self": _link(f"{url}/relationships/links")}}}


def folder(base: str, f: Folder, user: User) -> Doc:
    url = folder_url(base, f)
    data: Doc = {}
    if f.project.kind == ACC:
        data = {"allowedTypes": ["folders", "items:autodesk.bim360:File", "items:autodesk.bim360:Document",
                                 "items:autodesk.bim360:TitleBlock"],
                "visibleTypes": ["folders", "items:autodesk.bim360:File"], "namingStandardIds": []}
    rel: Doc = {"contents": {"links": {"related": _link(f"{url}/contents")}}, **_refs(url)}
    parent = f.parent
    rel["parent"] = ({"data": {"type": "folders", "id": parent.id}, "links": {"related": _link(folder_url(base, parent))}}
                     if parent is not None else {})
    return {"type": "folders", "id": f.id,
            "attributes": {"name": f.name, "displayName": f.name, "objectCount": f.object_count,
                           "createTime": iso(f.create_time), **_who(user, "create"),
                           "lastModifiedTime": iso(f.last_modified), **_who(user, "lastModified"),
                           "lastModifiedTimeRollup": iso(f.rollup), "hidden": f.hidden,
                           "extension": _extension(f.ext_type, base, data)},
            "links": {"self": _link(url)}, "relationships": rel}


def item(base: str, i: Item, user: User) -> Doc:
    url = item_url(base, i)
    tip = i.tip
    attributes: Doc = {"displayName": i.display_name, "createTime": iso(i.create_time), **_who(user, "create"),
                       "lastModifiedTime": iso(i.last_modified), **_who(user, "lastModified"),
                       "hidden": i.hidden, "reserved": i.reserved,
                       **({"reservedTime": iso(i.last_modified), **_who(user, "reserved")} if i.reserved else {}),
                       "extension": _extension(i.ext_type, base, {"sourceFileName": tip.name})}
    return {"type": "items", "id": i.id, "attributes": attributes,
            "links": {"self": _link(url)},
            "relationships": {
                "tip": {"data": {"type": "versions", "id": tip.id}, "links": {"related": _link(f"{url}/tip")}},
                "versions": {"links": {"related": _link(f"{url}/versions")}},
                "parent": {"data": {"type": "folders", "id": i.parent.id},
                           "links": {"related": _link(folder_url(base, i.parent))}},
                **_refs(url),
            }}


def version(base: str, v: Version, user: User) -> Doc:
    url = version_url(base, v)
    attributes: Doc = {"name": v.name, "displayName": v.name, "createTime": iso(v.create_time),
                       **_who(user, "create"), "lastModifiedTime": iso(v.create_time),
                       **_who(user, "lastModified"), "versionNumber": v.number}
    rel: Doc = {"item": {"data": {"type": "items", "id": v.item.id}, "links": {"related": _link(item_url(base, v.item))}},
                **_refs(url)}
    if v.deleted:
        attributes["extension"] = _extension(v.ext_type, base)
    elif not v.downloadable:  # an unpublished cloud model: metadata, no storage
        attributes.update({"mimeType": v.mime_type})
        if v.file_type:
            attributes["fileType"] = v.file_type
        attributes["extension"] = _extension(v.ext_type, base, {"isCompositeDesign": False})
    else:
        attributes.update({"mimeType": v.mime_type, "storageSize": v.size})
        if v.file_type:
            attributes["fileType"] = v.file_type
        ext_data: Doc = {"storageType": "OSS", "storageUrn": v.storage_urn}
        if v.item.project.kind == ACC:
            ext_data.update({"processState": "PROCESSING_COMPLETE", "extractionState": "SUCCESS",
                             "conformingStatus": "NONE", "tempUrn": None, "properties": {}})
        attributes["extension"] = _extension(v.ext_type, base, ext_data)
        rel["storage"] = {"data": {"type": "objects", "id": v.storage_urn},
                          "meta": {"link": _link(f"{base}/oss/v2/buckets/{BUCKET}/objects/{q(v.object_key or '')}")}}
    return {"type": "versions", "id": v.id, "attributes": attributes, "links": {"self": _link(url)},
            "relationships": rel}


# ---- the write side
def object_url(base: str, bucket: str, object_key: str) -> str:
    return f"{base}/oss/v2/buckets/{bucket}/objects/{q(object_key)}"


def storage(base: str, r: Reservation) -> Doc:
    """``POST .../storage``: the object id and the folder it is reserved in."""
    return {"jsonapi": JSONAPI, "links": {"self": _link(object_url(base, BUCKET, r.object_key))},
            "data": {"type": "objects", "id": r.storage_urn,
                     "relationships": {"target": {"links": {"related": _link(folder_url(base, r.folder))},
                                                  "data": {"type": "folders", "id": r.folder.id}}}}}


def object_details(base: str, r: Reservation, sha1: str) -> Doc:
    """``POST .../signeds3upload``: the completed object."""
    return {"bucketKey": BUCKET, "objectId": r.storage_urn, "objectKey": r.object_key, "size": r.size,
            "contentType": r.content_type, "location": object_url(base, BUCKET, r.object_key), "sha1": sha1}


def user_profile(u: User) -> Doc:
    """Shape of ``GET /userprofile/v1/users/@me``."""
    return {"userId": u.user_id, "userName": u.user_name, "emailId": u.email, "firstName": u.first_name,
            "lastName": u.last_name, "emailVerified": True, "2FaEnabled": False, "countryCode": "US",
            "language": "en", "optin": False, "lastModified": "2024-01-15T09:00:00.000Z",
            "profileImages": {}}


def region_warning(region: str) -> Doc:
    """One ``meta.warnings`` entry of ``GET /hubs`` for a region this app cannot reach."""
    return {"Id": None, "HttpStatusCode": "403", "ErrorCode": "BIM360DM_ERROR",
            "Title": f"Unable to get hubs from BIM360DM {region}.",
            "Detail": "You don't have permission to access this API", "AboutLink": None, "Source": [], "meta": []}
