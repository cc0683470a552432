"""The Vault of each seed: the demo's "Engineering" vault, the empty seed's empty vault, and
``generate:vault_files=...`` (folders nested ``fanout`` deep, versions, the grammar's checks)."""

from __future__ import annotations

import pytest

from aps_mirror.simulator import Simulator
from aps_mirror.simulator.vault.state import FORBIDDEN_CHARACTERS


def test_the_demo_vault() -> None:
    vault = Simulator(seed="demo", rate_scale=0).vault
    (engineering,) = vault.store.vaults
    files = list(vault.iter_files(include_cloaked=True))
    assert engineering.name == "Engineering" and len(files) == 21
    assert sum(f.tip.file.cloaked for f in files) == 1 and len(engineering.links) == 1
    assert sum(f.tip.number > 1 for f in files) >= 6 and max(f.tip.number for f in files) == 4
    assert [f.tip.file.name for f in files if f.tip.file.checked_out_by] == ["Housing.ipt"]
    names = [f.tip.file.name for f in files]
    assert any(not n.isascii() for n in names) and any("  " in n for n in names) and any("%" in n for n in names)
    assert not any(ch in n for n in names for ch in FORBIDDEN_CHARACTERS)
    assert ("Projects", "Archive") in {folder.path for folder in engineering.folders.values()}  # an empty folder


def test_the_same_seed_gives_the_same_vault() -> None:
    first, second = (Simulator(seed="demo", rate_scale=0).vault for _ in range(2))
    rows = [[(e.file_id, e.tip.id, e.tip.size, e.path) for e in v.iter_files(include_cloaked=True)]
            for v in (first, second)]
    assert rows[0] == rows[1]
    tip = rows[0][3][1]
    assert first.sha256("106", tip) == second.sha256("106", tip)


def test_the_empty_seed_has_one_empty_vault() -> None:
    vault = Simulator(seed="empty", rate_scale=0).vault
    assert [v.name for v in vault.store.vaults] == ["Vault"] and not list(vault.iter_files())


def test_a_generated_vault() -> None:
    sim = Simulator(seed="generate:projects=0,vault_files=1000,vault_folders=13,fanout=3,vault_versions=2",
                    rate_scale=0)
    assert not list(sim.iter_files())  # no Docs projects asked for
    (generated,) = sim.vault.store.vaults
    files = list(sim.vault.iter_files())
    assert len(files) == 1000 and {f.tip.number for f in files} == {2}
    assert len(generated.folders) == 14 and max(len(f.path) for f in generated.folders.values()) == 3
    assert len({(f.path, f.tip.file.name) for f in files}) == 1000


@pytest.mark.parametrize("spec", ["vault_files=-1", "vault_versions=0", "vault_file=3"])
def test_the_grammar_refuses_bad_vault_settings(spec: str) -> None:
    with pytest.raises(ValueError):
        Simulator(seed=f"generate:{spec}", rate_scale=0)
