"""The receiver's record and dedupe on SQLite (the e2e test runs them on PostgreSQL): the same JSON
query finds a delivery id in an event's extra, and the lock is SQLite's writer lock."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from aps_mirror.airflow_provider.assets import live_asset_name
from aps_mirror.airflow_provider.ui.webhook_events import DuplicateDelivery, NoLiveAsset, record_delivery


@pytest.fixture(scope="module")
def mirror(airflow_db) -> str:
    """A mirror whose live asset is in the database and active, as a parsed live DAG leaves it."""
    from airflow.models.asset import AssetActive, AssetModel
    from airflow.utils.session import create_session

    name = f"sqlite_{uuid.uuid4().hex[:8]}"
    with create_session() as session:
        asset = AssetModel(name=live_asset_name(name), uri=f"s3://b/{name}/_aps_mirror/live", group="aps-mirror-live")
        session.add(asset)
        session.flush()
        session.add(AssetActive.for_asset(asset))
    return name


def events_with(delivery_id: str) -> int:
    from sqlalchemy import func, select

    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.scalar(select(func.count()).select_from(AssetEvent)
                              .where(AssetEvent.extra["delivery_id"].as_string() == delivery_id))


def test_a_delivery_id_is_recorded_once(mirror: str) -> None:
    now, delivery_id = datetime.now(timezone.utc), str(uuid.uuid4())
    record_delivery(mirror, {"delivery_id": delivery_id, "event": "dm.version.added"}, now)
    with pytest.raises(DuplicateDelivery):
        record_delivery(mirror, {"delivery_id": delivery_id, "event": "dm.version.added"}, now)
    record_delivery(mirror, {"delivery_id": str(uuid.uuid4()), "event": "dm.version.added"}, now)
    assert events_with(delivery_id) == 1


def test_a_mirror_without_live_asset_records_nothing(airflow_db) -> None:
    delivery_id = str(uuid.uuid4())
    with pytest.raises(NoLiveAsset):
        record_delivery("no_such_mirror", {"delivery_id": delivery_id}, datetime.now(timezone.utc))
    assert events_with(delivery_id) == 0
