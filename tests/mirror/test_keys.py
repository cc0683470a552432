import unicodedata

import pytest

from aps_mirror.mirror.keys import (MAX_KEY_BYTES, MAX_SEGMENT_BYTES, assign_segments,
                                    object_key, safe_segment)


@pytest.mark.parametrize("name, expected", [
    ("..", "．．"),
    (".", "．"),
    ("a/b", "a／b"),
    ("a\\b", "a＼b"),
    ('a<b>c:d"e|f?g*h', "a＜b＞c：d＂e｜f？g＊h"),
    ("tab\there", "tab\u2409here"),
    ("nul\x00byte", "nul\u2400byte"),
    ("del\x7f", "del\u2421"),
    ("CON", "CON_"),
    ("con.txt", "con_.txt"),
    ("Lpt9.dwg", "Lpt9_.dwg"),
    ("AUX.tar.gz", "AUX_.tar.gz"),
    ("console.txt", "console.txt"),  # only exact device names are reserved
    (" lead", "\u2420lead"),
    ("trail ", "trail\u2420"),
    ("dot.", "dot．"),
    ("", "_"),
    ("Plan A-101.pdf", "Plan A-101.pdf"),
])
def test_safe_segment(name, expected):
    assert safe_segment(name) == expected


def test_no_segment_can_climb_out_of_its_folder():
    for name in ("..", "../../etc/passwd", "..\\..\\win.ini", "/abs"):
        segment = safe_segment(name)
        assert "/" not in segment and "\\" not in segment and segment not in (".", "..")


def test_unicode_is_normalised_to_nfc():
    nfd = unicodedata.normalize("NFD", "Ärger – Détails.pdf")
    nfc = unicodedata.normalize("NFC", "Ärger – Détails.pdf")
    assert nfd != nfc
    assert safe_segment(nfd) == safe_segment(nfc) == nfc


def test_thousand_character_name_is_cut_but_keeps_extension_and_stays_unique():
    a = safe_segment("x" * 1000 + ".pdf")
    b = safe_segment("x" * 999 + "y.pdf")
    assert len(a.encode()) <= MAX_SEGMENT_BYTES and a.endswith(".pdf")
    assert a != b
    multibyte = safe_segment("é" * 1000 + ".dwg")
    assert len(multibyte.encode()) <= MAX_SEGMENT_BYTES
    multibyte.encode("utf-8")  # no half characters


def test_collisions_in_one_folder_are_told_apart_stably():
    entries = [("urn:2", "Report.PDF"), ("urn:1", "report.pdf"), ("urn:3", "other.pdf")]
    first = assign_segments(entries)
    assert first["urn:1"] == "report.pdf"
    assert first["urn:2"] != "Report.PDF" and first["urn:2"].endswith(".PDF")
    assert len({s.casefold() for s in first.values()}) == 3
    assert assign_segments(list(reversed(entries))) == first


def test_object_key_layout_and_length_limit():
    key = object_key("mirror/", "Hub", "Project", ("A", "B"), "f.txt")
    assert key == "mirror/Hub/Project/A/B/f.txt"
    deep = tuple("d" * 200 for _ in range(10))
    long_key = object_key("mirror", "Hub", "Project", deep, "f.txt")
    assert len(long_key.encode()) <= MAX_KEY_BYTES
    assert long_key.startswith("mirror/Hub/Project/_long_paths/") and long_key.endswith("/f.txt")
