"""README's claims that code can check: the params table lists exactly the DAG's params."""

from __future__ import annotations

import re
from pathlib import Path

from aps_mirror.options import SYNC_OPTIONS

README = Path(__file__).resolve().parents[1] / "README.md"


def params_table() -> dict[str, str]:
    """Param name -> default column, from every `| param | default | meaning |` table (the
    sync options, and the protections of the objects)."""
    text = README.read_text(encoding="utf-8")
    rows: dict[str, str] = {}
    for start in (m.start() for m in re.finditer(re.escape("| param | default | meaning |"), text)):
        for line in text[start:].split("\n\n", 1)[0].splitlines()[2:]:
            name_cell, default_cell = line.split("|")[1:3]
            for name in re.findall(r"`([a-z_]+)`", name_cell):
                assert name not in rows, f"{name} is in two params tables"
                rows[name] = default_cell.strip()
    return rows


def test_the_params_table_lists_every_sync_option_and_nothing_else():
    assert set(params_table()) == {option.param_name for option in SYNC_OPTIONS}


def test_the_params_tables_defaults_are_the_options_defaults():
    table = params_table()
    for option in SYNC_OPTIONS:
        if option.name in ("bucket", "prefix"):  # environment-dependent, said in words
            continue
        shown = table[option.param_name]
        if option.default in (None, ()):
            assert shown.startswith(("none", "`[]`")), option.name
        else:
            expected = str(option.default).lower() if isinstance(option.default, bool) else option.default
            assert shown.strip("`") in (str(expected), f"{expected:g}" if isinstance(expected, float) else ""), \
                (option.name, shown)
