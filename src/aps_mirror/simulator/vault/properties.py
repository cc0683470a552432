"""System property definitions and the values an entity has for them (search criteria, ``properties``).

Vault's system names are not in the spec (GUESS, after the SOAP-era names). No checksum
property is offered: whether Vault exposes one (``Cksum``) is unverified.
"""

from __future__ import annotations

from typing import Any

from .model import File, FileVersion, Folder, PropertyDefinition

FILE, FOLDER = "FILE", "FLDR"
STRING, NUMERIC, BOOL, DATETIME = "String", "Numeric", "Bool", "DateTime"

DEFINITIONS: tuple[PropertyDefinition, ...] = (
    PropertyDefinition("1", "Name", "Name", STRING, FILE),
    PropertyDefinition("2", "CheckInDate", "Checked In", DATETIME, FILE),
    PropertyDefinition("3", "CreateDate", "Date Created", DATETIME, FILE),
    PropertyDefinition("4", "ModDate", "Date Modified", DATETIME, FILE),
    PropertyDefinition("5", "FileSize", "File Size", NUMERIC, FILE),
    PropertyDefinition("6", "State", "State", STRING, FILE),
    PropertyDefinition("7", "CategoryName", "Category Name", STRING, FILE),
    PropertyDefinition("8", "Revision", "Revision", STRING, FILE),
    PropertyDefinition("9", "CreateUserName", "Created By", STRING, FILE),
    PropertyDefinition("10", "CheckoutUserName", "Checked Out By", STRING, FILE),
    PropertyDefinition("11", "VersionNumber", "Version", NUMERIC, FILE),
    PropertyDefinition("12", "IsCheckedOut", "Checked Out", BOOL, FILE),
    PropertyDefinition("20", "Name", "Name", STRING, FOLDER),
    PropertyDefinition("21", "CreateDate", "Date Created", DATETIME, FOLDER),
    PropertyDefinition("22", "CategoryName", "Category Name", STRING, FOLDER),
    PropertyDefinition("23", "CreateUserName", "Created By", STRING, FOLDER),
)
BY_ID = {d.id: d for d in DEFINITIONS}


def file_value(definition: PropertyDefinition, version: FileVersion) -> Any:
    """A version's value (str, float, bool, epoch seconds for dates; None when unset)."""
    file: File = version.file
    checked_out = version.is_tip and file.checked_out_by is not None
    return {
        "Name": file.name,
        "CheckInDate": None if checked_out else version.checkin_time,
        "CreateDate": version.create_time,
        "ModDate": version.modified_time,
        "FileSize": float(version.size),
        "State": version.state,
        "CategoryName": file.category,
        "Revision": version.revision,
        "CreateUserName": version.create_user,
        "CheckoutUserName": file.checked_out_by if checked_out else None,
        "VersionNumber": float(version.number),
        "IsCheckedOut": checked_out,
    }.get(definition.system_name)


def folder_value(definition: PropertyDefinition, folder: Folder) -> Any:
    return {"Name": folder.name, "CreateDate": folder.create_time, "CategoryName": folder.category,
            "CreateUserName": folder.create_user}.get(definition.system_name)


def value_of(definition: PropertyDefinition, entity: FileVersion | Folder) -> Any:
    """The entity's value, or None when the definition is of the other entity class."""
    if isinstance(entity, Folder):
        return folder_value(definition, entity) if definition.entity_class == FOLDER else None
    return file_value(definition, entity) if definition.entity_class == FILE else None


def requested(raw: str | None, entity_class: str) -> list[PropertyDefinition]:
    """The definitions named by ``option[propDefIds]`` (comma list or ``all``) for one entity class."""
    if not raw:
        return []
    wanted = {part.strip() for part in raw.split(",") if part.strip()}
    return [d for d in DEFINITIONS if d.entity_class == entity_class and ("all" in wanted or d.id in wanted)]
