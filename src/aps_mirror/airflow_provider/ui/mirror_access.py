"""Who may see which mirror on the dashboard: Airflow's own rights on the DAG that writes it.

The rule, asked of whatever auth manager the deployment runs (SimpleAuthManager, FAB,
Keycloak, a managed service's):
- a mirror with a DAG id is shown to the users who may read that DAG (`is_authorized_dag`
  GET with the DAG's id, and its team in multi-team mode), as Airflow's DAG pages decide;
  the DAG need not exist any more (the rights on its id still answer);
- a mirror with no DAG id (listed in APS_MIRROR_DASHBOARD_MIRRORS without `dag_id=`, or an
  asset event that names no DAG) could belong to any DAG, so it is shown only to users who
  may read DAGs without naming one (`is_authorized_dag` GET with no DAG): FAB's DAG-wide read
  permission (not a single DAG's), SimpleAuthManager's viewer role and above. Add `dag_id=`
  to give such a mirror to the readers of its DAG;
- the page itself: when there are mirrors, a user who may see none of them gets 403 (one line,
  naming no mirror); when there are none yet, users who may read DAGs (without naming one, or
  at least one DAG) get the page that says what to do, anyone else 403.
"""

from __future__ import annotations

from typing import Any, Iterable

from aps_mirror.airflow_provider.ui.mirror_locations import MirrorLocation

NO_MIRROR_VISIBLE = ("You may not read the DAG of any mirror this page shows: ask an Airflow admin for read "
                     "access to your mirror's DAG.")
NO_DAG_READ = "You may not read DAGs, whose mirrors this page shows: ask an Airflow admin for read access."


def visible_mirrors(user: Any, mirrors: Iterable[MirrorLocation]) -> list[MirrorLocation]:
    """The mirrors `user` may see, in their order."""
    mirrors = list(mirrors)
    readable = readable_dags(user, {m.dag_id for m in mirrors if m.dag_id})
    general = None if all(m.dag_id for m in mirrors) else may_read_dags_in_general(user)
    return [m for m in mirrors if (m.dag_id in readable if m.dag_id else general)]


def readable_dags(user: Any, dag_ids: set[str]) -> set[str]:
    """Those of `dag_ids` the user may read."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    teams = _team_names(dag_ids)
    manager = get_auth_manager()
    return {dag_id for dag_id in dag_ids if manager.is_authorized_dag(
        method="GET", user=user, details=DagDetails(id=dag_id, **teams.get(dag_id, {})))}


def may_read_dags_in_general(user: Any) -> bool:
    from airflow.api_fastapi.app import get_auth_manager

    return bool(get_auth_manager().is_authorized_dag(method="GET", user=user))


def may_read_some_dag(user: Any) -> bool:
    """Whether the page's "no mirror yet" help is for this user: DAGs in general, or at least one."""
    if may_read_dags_in_general(user):
        return True
    from airflow.api_fastapi.app import get_auth_manager

    return bool(get_auth_manager().get_authorized_dag_ids(user=user, method="GET"))


def _team_names(dag_ids: set[str]) -> dict[str, dict[str, str]]:
    """DagDetails' team per DAG in multi-team mode (Airflow 3.2+), as Airflow's own routes pass it;
    nothing otherwise (older versions have neither the mode nor the field)."""
    from airflow.configuration import conf

    if not dag_ids or not conf.getboolean("core", "multi_team", fallback=False):
        return {}
    from airflow.models.dag import DagModel

    mapping = DagModel.get_dag_id_to_team_name_mapping(sorted(dag_ids))
    return {dag_id: {"team_name": team} for dag_id, team in mapping.items() if team}
