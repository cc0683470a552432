"""The Vault Data API v2 response shapes as JSON Schemas, written from docs/vault-api-notes.md
(which restates Autodesk's OpenAPI 2.0.12; the spec itself is not vendored here).

Each schema lists the fields and types the notes give. Extra fields are allowed, since live
responses carry fields the schema does not list (``isHidden``), and clients must ignore them.
The spec requires fewer fields (FileVersion: ``id`` and ``name``; FileObject: ``id`` and
``url``; Session: ``accessToken``); the simulator is held to sending every listed field, so
these schemas require them all, except ``pagination.nextUrl`` (absent on the last page) and
``included``.
"""

from __future__ import annotations

from typing import Any

import jsonschema

# ISO-8601 UTC with up to 7 fractional digits; unset dates are 0001-01-01T00:00:00Z.
DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z$"}
ID = {"type": "string", "pattern": r"^\d+$"}  # ids are strings (numeric in Vault)
RELATIVE_URL = {"type": "string", "pattern": r"^/AutodeskDM/Services/api/vault/v2/"}
STRING = {"type": "string"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """An object with these properties, all of them required unless ``required`` says otherwise."""
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required}


VAULT = obj({"name": STRING, "id": ID, "url": RELATIVE_URL})
USER = obj({"id": ID, "name": STRING})
PROPERTY = obj({"propertyDefinitionId": ID, "value": STRING})
PROPERTIES = {"type": "array", "items": PROPERTY}

FOLDER = obj({
    "id": ID, "url": RELATIVE_URL, "name": STRING, "fullName": STRING, "createDate": DATE,
    "createUserName": STRING, "category": STRING, "categoryColor": NUMBER, "state": STRING,
    "stateColor": NUMBER, "subfolderCount": NUMBER, "isLibrary": BOOLEAN, "isReadOnly": BOOLEAN,
    "isCloaked": BOOLEAN, "properties": PROPERTIES, "entityType": {"const": "Folder"},
})
FOLDER_EXTENDED = {"allOf": [FOLDER, obj({"parentFolderId": ID, "parent": FOLDER})]}

FILE_REFERENCE = obj({"id": ID, "url": RELATIVE_URL, "versionType": {"enum": ["None", "Latest", "LatestReleased"]}})
CLASSIFICATIONS = ["None", "DesignVisualization", "DesignDocument", "ConfigurationMember", "ConfigurationFactory",
                   "ElectricalProject", "DesignSubstitute", "DesignRepresentation", "DesignPresentation"]
VISUALIZATION = ["None", "Syncronized", "NotSyncronized", "UserVerified", "Legacy"]
FILE_VERSION_FIELDS = {
    "id": ID, "name": STRING, "version": NUMBER, "revision": STRING, "file": FILE_REFERENCE,
    "parentFolderId": ID, "size": NUMBER, "createDate": DATE, "checkinDate": DATE, "checkoutDate": DATE,
    "checkoutUserName": STRING, "lastModifiedDate": DATE, "isCheckedOut": BOOLEAN, "state": STRING,
    "stateColor": NUMBER, "category": STRING, "categoryColor": NUMBER, "classification": {"enum": CLASSIFICATIONS},
    "visualizationAttachmentStatus": {"enum": VISUALIZATION}, "hasVisualizationAttachment": BOOLEAN,
    "isReadOnly": BOOLEAN, "isCloaked": BOOLEAN, "isOnSite": BOOLEAN, "entityType": {"const": "FileVersion"},
    "url": RELATIVE_URL, "createUserName": STRING, "properties": PROPERTIES,
}
FILE_VERSION = obj(FILE_VERSION_FIELDS)
FILE_VERSION_EXTENDED = {"allOf": [FILE_VERSION, obj({"checkoutUser": {"anyOf": [{"type": "null"}, USER]},
                                                      "parent": FOLDER})]}
FILE_OBJECT = {"allOf": [FILE_REFERENCE, obj({"fileVersion": FILE_VERSION_EXTENDED})]}

LINK = obj({"id": ID, "name": STRING, "createDate": DATE, "createUserName": STRING, "entityType": STRING,
            "url": RELATIVE_URL, "toEntity": {"anyOf": [FOLDER, FILE_VERSION]}, "fromEntity": FOLDER})
ENTITY = {"anyOf": [FILE_VERSION, FOLDER, LINK]}

PROPERTY_DEFINITION = obj({"id": ID, "url": RELATIVE_URL, "displayName": STRING, "systemName": STRING,
                           "dataType": {"enum": ["String", "Numeric", "Bool", "DateTime", "Image"]},
                           "active": BOOLEAN, "isSystem": BOOLEAN, "initialValue": STRING})

PAGINATION = obj({"limit": {"type": "integer", "minimum": 1}, "totalResults": {"type": "integer", "minimum": 0},
                  "indexingStatus": {"enum": ["IndexingComplete", "IndexingProperties", "IndexingContent", "NA"]},
                  "nextUrl": RELATIVE_URL}, ["limit", "totalResults", "indexingStatus"])
INCLUDED = obj({"folder": {"type": "object", "additionalProperties": FOLDER},
                "propertyDefinition": {"type": "object", "additionalProperties": PROPERTY_DEFINITION}}, [])


def collection(item: dict[str, Any]) -> dict[str, Any]:
    return obj({"pagination": PAGINATION, "results": {"type": "array", "items": item}, "included": INCLUDED},
               ["pagination", "results"])


SESSION = obj({"id": STRING, "accessToken": {"type": "string", "pattern": "^V:.+"}, "vaultInformation": VAULT,
               "userInformation": USER})
SIGNED_URL = obj({"id": ID, "url": STRING})
SERVER_INFO = obj({"name": STRING, "productVersion": STRING})
ERROR = obj({"title": STRING, "detail": STRING, "statusCode": {"type": "integer"}, "errorCode": STRING})

SHAPES: dict[str, dict[str, Any]] = {
    "Vault": VAULT, "VaultCollection": collection(VAULT), "Folder": FOLDER, "FolderExtended": FOLDER_EXTENDED,
    "FolderCollection": collection(FOLDER), "FolderExtendedCollection": collection(FOLDER_EXTENDED),
    "FileVersion": FILE_VERSION, "FileVersionExtended": FILE_VERSION_EXTENDED,
    "FileVersionCollection": collection(FILE_VERSION),
    "FileVersionExtendedCollection": collection(FILE_VERSION_EXTENDED), "FileObject": FILE_OBJECT,
    "LinkEntity": LINK, "EntityCollection": collection(ENTITY), "PropertyDefinition": PROPERTY_DEFINITION,
    "PropertyDefinitionCollection": collection(PROPERTY_DEFINITION), "Session": SESSION, "SignedUrl": SIGNED_URL,
    "ServerInfo": SERVER_INFO, "ErrorResponse": ERROR,
}


def validate(document: Any, shape: str) -> None:
    """Raise jsonschema.ValidationError unless ``document`` has the shape named ``shape``."""
    jsonschema.Draft202012Validator(SHAPES[shape]).validate(document)
