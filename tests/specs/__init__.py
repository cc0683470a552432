"""Third-party specifications the tests validate against, vendored so that a clone needs
nothing beside it (provenance, licenses and refreshing: README.md in this folder)."""

from __future__ import annotations

from pathlib import Path

SPECS_DIR = Path(__file__).resolve().parent


def spec_path(name: str) -> Path:
    """The vendored file ``name``, e.g. ``"aps-openapi/oss.yaml"``.

    A missing file is an error, never a reason to skip: the tests that read it would otherwise
    pass without checking anything.
    """
    path = SPECS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"Vendored specification {name!r} is missing from {SPECS_DIR}; "
                                f"restore it as {SPECS_DIR / 'README.md'} describes.")
    return path
