"""Lenient parsing of Vault answers: unknown fields ignored, numbers as floats, ids as strings,
Vault's unset date and unreadable dates as None, missing members as defaults."""

from __future__ import annotations

from datetime import datetime, timezone

from aps_mirror.vault import VaultFileVersion, VaultFolder
from aps_mirror.vault.models import vault_time


def test_dates() -> None:
    assert vault_time("0001-01-01T00:00:00Z") is None
    assert vault_time("2024-10-21T07:56:45.2277149Z") == datetime(2024, 10, 21, 7, 56, 45, 227714, timezone.utc)
    assert vault_time("2024-10-17T19:17:40.043Z") == datetime(2024, 10, 17, 19, 17, 40, 43000, timezone.utc)
    assert vault_time("yesterday") is None and vault_time(None) is None and vault_time("") is None


def test_a_file_version_with_extra_and_odd_fields() -> None:
    row = VaultFileVersion.from_json({
        "id": 123.0, "name": "Part.ipt", "version": 2.0, "file": {"id": 77, "url": "/x", "versionType": "Latest"},
        "parentFolderId": "9", "size": 1024.0, "checkinDate": "0001-01-01T00:00:00Z", "isCheckedOut": True,
        "createDate": "2024-10-17T19:17:40.043Z", "isHidden": False, "somethingNew": {"a": 1}})
    assert (row.id, row.file_id, row.version, row.size, row.parent_folder_id) == ("123", "77", 2, 1024, "9")
    assert row.checked_in is None and row.checked_out and row.reliable_size is None
    assert row.created == datetime(2024, 10, 17, 19, 17, 40, 43000, timezone.utc) and row.on_site


def test_a_bare_file_version_and_folder() -> None:
    row = VaultFileVersion.from_json({"id": "5", "name": "a.txt"})  # the spec's only required fields
    assert (row.file_id, row.version, row.size, row.version_type, row.cloaked) == ("", 0, None, "None", False)
    folder = VaultFolder.from_json({"id": "1", "name": "$", "fullName": "$"})
    assert (folder.segments, folder.subfolder_count, folder.parent_id) == ((), 0, None)
    assert VaultFolder.from_json({"id": 4, "fullName": "$/A/B c"}).segments == ("A", "B c")
