"""Selection of hubs, projects and top folders: the simulator over HTTP -> moto's S3 server.

What the filters leave out is neither copied nor deleted (nor retired); a changed selection
walks everything once, so pruned subtrees cannot hide newly selected files.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.models import Folder
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine, RunSummary
from aps_mirror.mirror.plan import DeleteLimit, DeletePolicy
from aps_mirror.mirror.selection import select_top_folders
from aps_mirror.simulator import Simulator, SimulatorServer
from aps_mirror.simulator.model import ACC, FUSION
from tests.conftest import FAST_RETRY, connection_for
from tests.mirror.test_engine import PREFIX, mirrored, object_keys

ACC_HUB = "hubs:autodesk.bim360:Account"
FUSION_HUB = "hubs:autodesk.core:Hub"
PERSONAL_HUB = "hubs:autodesk.a360:PersonalHub"


def selected_by_default(sim) -> list:
    """The simulator's files that the default top folders select: "Project Files" in ACC hubs,
    everything (but system folders, which `iter_files` leaves out) in the others."""
    kinds = {hub.name: hub.kind for hub in sim.account.hubs}
    return [f for f in sim.iter_files() if kinds[f.hub] != ACC or f.path[:1] == ("Project Files",)]


def engine_for(aps, s3, bucket, **config) -> MirrorEngine:
    return MirrorEngine(aps, s3, MirrorConfig(bucket=bucket, prefix=PREFIX, **config))


def sync(aps, s3, bucket, **config) -> tuple[RunSummary, list]:
    """A whole run as the CLI does it: list, sync each project, retire the missing ones."""
    engine = engine_for(aps, s3, bucket, **config)
    projects = engine.list_projects()
    results = [engine.sync_project(p) for p in projects]
    retired = engine.retire_missing_projects(projects, results)
    return RunSummary.combine(results + retired), results


def live(s3, bucket) -> dict[str, dict]:
    return {i: e for i, e in mirrored(s3, bucket).items() if not e["deleted_at"]}


def names(aps, s3, bucket, **config) -> list[str]:
    return sorted(p.label for p in engine_for(aps, s3, bucket, **config).list_projects())


RIVERSIDE = "Northwind Construction / Riverside Tower"
HARBOR = "Northwind Construction / Harbor Bridge Retrofit"
GIMBAL = "Fusion Design Team / Drone Gimbal"


# -- hubs and projects ---------------------------------------------------------------------

def test_hubs_are_included_and_excluded_by_name_or_id_glob(aps, s3, bucket):
    hubs = {h.name: h.id for h in aps.hubs()}
    acc_id, fusion_id = hubs["Northwind Construction"], hubs["Fusion Design Team"]
    assert acc_id.startswith("b.") and not fusion_id.startswith("b.")

    assert names(aps, s3, bucket, hub_filter=("fusion*",)) == [GIMBAL]  # case-insensitive glob
    assert names(aps, s3, bucket, hub_filter=("Northwind Construction",)) == [HARBOR, RIVERSIDE]
    assert names(aps, s3, bucket, hub_filter=(acc_id,)) == [HARBOR, RIVERSIDE]
    assert names(aps, s3, bucket, hub_filter=(acc_id.removeprefix("b."),)) == [HARBOR, RIVERSIDE]
    assert names(aps, s3, bucket, hub_filter=(fusion_id,)) == [GIMBAL]
    assert names(aps, s3, bucket, exclude_hubs=("NORTHWIND*",)) == [GIMBAL]
    assert names(aps, s3, bucket, exclude_hubs=(acc_id.removeprefix("b.")[:8] + "*",)) == [GIMBAL]
    # An exclusion wins over an inclusion.
    assert names(aps, s3, bucket, hub_filter=("*",), exclude_hubs=(fusion_id,)) == [HARBOR, RIVERSIDE]
    assert names(aps, s3, bucket, hub_filter=("Fusion*",), exclude_hubs=("Fusion*",)) == []


def test_an_excluded_hub_is_not_even_listed(simulator, aps, s3, bucket):
    simulator.sim.reset_stats()
    names(aps, s3, bucket, exclude_hubs=("Northwind*",))
    assert simulator.sim.stats()["requests"]["projects"] == 1  # the Fusion hub's projects only


def test_projects_are_included_and_excluded_by_name_id_and_glob(simulator, aps, s3, bucket):
    riverside = simulator.sim.project_id("Riverside Tower")
    gimbal = simulator.sim.project_id("Drone Gimbal")
    assert riverside.startswith("b.")

    assert names(aps, s3, bucket, project_filter=("Riverside Tower",)) == [RIVERSIDE]
    assert names(aps, s3, bucket, project_filter=("*bridge*", "drone*")) == [GIMBAL, HARBOR]
    assert names(aps, s3, bucket, project_filter=(riverside,)) == [RIVERSIDE]
    assert names(aps, s3, bucket, project_filter=(riverside.removeprefix("b."),)) == [RIVERSIDE]
    assert names(aps, s3, bucket, project_filter=(gimbal,)) == [GIMBAL]
    assert names(aps, s3, bucket, exclude_projects=("riverside tower",)) == [GIMBAL, HARBOR]
    assert names(aps, s3, bucket, exclude_projects=(riverside.removeprefix("b."),)) == [GIMBAL, HARBOR]
    assert names(aps, s3, bucket, exclude_projects=("riverside*", "*BRIDGE*")) == [GIMBAL]
    # An exclusion wins over an inclusion, and hub and project filters combine.
    assert names(aps, s3, bucket, project_filter=("R*", "H*"), exclude_projects=(riverside,)) == [HARBOR]
    assert names(aps, s3, bucket, hub_filter=("Fusion*",), project_filter=("Riverside*",)) == []


def test_excluded_projects_and_hubs_are_neither_copied_nor_retired(simulator, aps, s3, bucket):
    sim = simulator.sim
    guards = dict(delete_policy=DeletePolicy.DELETE, max_delete=DeleteLimit(count=1000))
    sync(aps, s3, bucket, **guards)
    before = object_keys(s3, bucket)
    assert {e["key"].split("/")[2] for e in live(s3, bucket).values()} == {
        "Riverside Tower", "Harbor Bridge Retrofit", "Drone Gimbal"}

    harbor = sim.project_id("Harbor Bridge Retrofit")
    new_in_harbor = sim.add_file(harbor, sim.folder_id(harbor, ("Project Files",)), "New.dwg", size=900)
    summary, results = sync(aps, s3, bucket, exclude_projects=("Harbor*",), exclude_hubs=("Fusion*",), **guards)
    assert [r.project for r in results] == [RIVERSIDE]
    assert summary.files_deleted == 0 and summary.files_copied == 0
    assert object_keys(s3, bucket) == before
    assert new_in_harbor not in mirrored(s3, bucket)

    # Even gone from Autodesk, an excluded project is left alone; once selected, it is retired.
    sim.delete_project(harbor)
    summary, _ = sync(aps, s3, bucket, exclude_projects=("harbor bridge retrofit",), **guards)
    assert summary.files_deleted == 0 and object_keys(s3, bucket) == before
    summary, _ = sync(aps, s3, bucket, project_filter=("Riverside*", "Harbor*"), **guards)
    assert summary.files_deleted > 0
    assert not any("/Harbor Bridge Retrofit/" in k for k in object_keys(s3, bucket))


# -- top folders ---------------------------------------------------------------------------

def test_default_top_folders_depend_on_the_hub_type(simulator, aps, s3, bucket):
    sim = simulator.sim
    summary, results = sync(aps, s3, bucket)
    expected = selected_by_default(sim)
    assert set(live(s3, bucket)) == {f.item_id for f in expected}
    assert summary.files_copied == len(expected) and summary.files_failed == 0
    # ACC: Project Files only, Plans not; Fusion: every top folder.
    assert not any(f.path[0] == "Plans" and f.item_id in live(s3, bucket) for f in sim.iter_files())
    gimbal = {f.item_id for f in sim.iter_files() if f.project == "Drone Gimbal"}
    assert {f.path[0] for f in sim.iter_files() if f.project == "Drone Gimbal"} == {
        "Gimbal Assembly", "Electronics", "Documentation"}
    assert gimbal <= set(live(s3, bucket))


def test_plans_on_request_and_a_changed_selection_walks_everything_once(simulator, aps, s3, bucket):
    sim = simulator.sim
    sync(aps, s3, bucket)
    unchanged, _ = sync(aps, s3, bucket)
    assert unchanged.folders_listed == 0  # a nightly run with nothing new lists nothing

    plans = [f for f in sim.iter_files() if f.path[0] == "Plans"]
    assert any(len(f.path) > 1 for f in plans), "the demo has files below Plans' top level"
    summary, results = sync(aps, s3, bucket, top_folders=("Project Files", "plans"))
    assert all(r.full_walk for r in results), "a changed selection lists every folder"
    assert summary.files_copied == len(plans)
    assert set(live(s3, bucket)) == {f.item_id for f in selected_by_default(sim)} | {f.item_id for f in plans}

    again, results = sync(aps, s3, bucket, top_folders=("Project Files", "plans"))
    assert not any(r.full_walk for r in results) and again.files_copied == 0

    everything, _ = sync(aps, s3, bucket, top_folders=("*",))  # "*": every non-system top folder
    assert everything.files_copied == 0
    assert set(live(s3, bucket)) == {f.item_id for f in sim.iter_files()}


def test_narrowing_the_top_folders_never_deletes_what_it_leaves_out(simulator, aps, s3, bucket):
    sim = simulator.sim
    guards = dict(delete_policy=DeletePolicy.DELETE, max_delete=DeleteLimit(count=1000))
    sync(aps, s3, bucket, top_folders=("*",), **guards)
    everything = object_keys(s3, bucket)
    riverside = sim.project_id("Riverside Tower")
    for night in range(3):  # the first walks everything (new selection), the others prune
        sim.add_file(riverside, sim.folder_id(riverside, ("Project Files", "MEP")), f"night {night}.txt", size=10)
        summary, _ = sync(aps, s3, bucket, **guards)
        assert summary.files_deleted == 0 and summary.files_copied == 1 and not summary.deletes_refused
        assert everything <= object_keys(s3, bucket)
    assert set(live(s3, bucket)) == {f.item_id for f in sim.iter_files()}


def test_a_fusion_hub_gets_every_folder_and_an_acc_hub_project_files_only(simulator, aps, s3, bucket):
    sim = simulator.sim
    fusion = sim.add_hub("Fusion Lab", kind=FUSION)
    lab = sim.add_project("Lab", fusion, top_folders=("Project Files", "Plans", "CAM"))
    acc = sim.add_hub("Builders", kind=ACC)
    site = sim.add_project("Site", acc, top_folders=("Project Files", "Plans", "Handover"))
    for project in (lab, site):
        for top in ("Project Files", "Plans"):
            sim.add_file(project, sim.folder_id(project, (top,)), f"{top}.pdf", size=100)
    sim.add_file(lab, sim.folder_id(lab, ("CAM",)), "toolpath.nc", size=100)
    sim.add_file(site, sim.folder_id(site, ("Handover",)), "keys.pdf", size=100)

    sync(aps, s3, bucket, hub_filter=("Fusion Lab", "Builders"))
    paths = {e["source_path"] for e in live(s3, bucket).values()}
    assert paths == {"Project Files/Project Files.pdf", "Plans/Plans.pdf", "CAM/toolpath.nc",  # Lab
                     "Project Files/Project Files.pdf"}  # Site: no Plans, no Handover
    assert len(live(s3, bucket)) == 4


@pytest.fixture
def acc_full():
    with SimulatorServer(Simulator(seed="acc-full", rate_scale=0)) as server:
        yield server


def test_acc_system_folders_only_when_named(acc_full, s3, bucket):
    aps = ApsClient(ApsTransport(connection_for(acc_full), retry_policy=FAST_RETRY))
    sim = acc_full.sim
    riverside = sim.account.project_by_name("Riverside Tower")
    system = {f.name: f for f in sim.account.top_folders(riverside) if f.system}
    assert {"Photos", "Recycle Bin", "ProjectTb"} <= set(system)

    def tops(**config) -> set[str]:
        sync(aps, s3, bucket, project_filter=("Riverside Tower",), **config)
        return {e["source_path"].split("/")[0] for e in live(s3, bucket).values()}

    assert tops() == {"Project Files"}
    assert tops(top_folders=("*",)) == {"Project Files", "Plans"}
    assert tops(top_folders=("*", "Photos", "issue_*")) == {
        "Project Files", "Plans", "Photos", next(n for n in system if n.startswith("issue_"))}
    # A glob that begins with a wildcard never names a system folder.
    assert "2f8e4c1a-6b3d-4e5f-9a7c-8d1b0e2f3a4c" not in tops(top_folders=("*4c", "*-*"))


def _folder(name: str, hidden: bool = False) -> Folder:
    return Folder(f"urn:{name}", name, hidden, datetime(2024, 1, 1), datetime(2024, 1, 1), None)


@pytest.mark.parametrize(("hub_type", "patterns", "listed", "expected"), [
    (ACC_HUB, (), ["Project Files", "Plans", "Photos"], ["Project Files"]),
    (ACC_HUB, ("*",), ["Project Files", "Plans", "Photos", "Recycle Bin"], ["Project Files", "Plans"]),
    (ACC_HUB, ("Plans",), ["Project Files", "Plans"], ["Plans"]),
    (ACC_HUB, ("photos", "recycle*"), ["Project Files", "Photos", "Recycle Bin"], ["Photos", "Recycle Bin"]),
    (ACC_HUB, ("P*",), ["Project Files", "Plans", "Photos"], ["Project Files", "Plans", "Photos"]),
    (ACC_HUB, ("?hotos", "[Pp]hotos"), ["Photos"], []),
    # A user who may not open Project Files itself sees the folders below it as top folders.
    (ACC_HUB, (), ["Architecture", "Structure", "Photos"], ["Architecture", "Structure"]),
    (FUSION_HUB, (), ["Project Files", "Plans", "CAM"], ["Project Files", "Plans", "CAM"]),
    (PERSONAL_HUB, (), ["My Designs", "Shared"], ["My Designs", "Shared"]),
    (None, (), ["Project Files", "Plans"], ["Project Files"]),
    (None, (), ["Designs", "Plans"], ["Designs", "Plans"]),
])
def test_select_top_folders(hub_type, patterns, listed, expected):
    folders = [_folder(n) for n in listed] + [_folder("Old", hidden=True)]
    assert [f.name for f in select_top_folders(folders, patterns, hub_type)] == expected
    assert "Old" not in [f.name for f in select_top_folders(folders, ("*", "Old"), hub_type)]


def test_selection_string_changes_with_the_top_folder_default():
    default = MirrorConfig(bucket="b").selection
    assert default != MirrorConfig(bucket="b", top_folders=("*",)).selection
    assert '[[], [], [], null]' != default  # what "every top folder" was recorded as before
    # Hub and project filters choose projects, not files: they do not force a full walk.
    assert MirrorConfig(bucket="b", project_filter=("x",), exclude_hubs=("y",)).selection == default
