"""Accepted Autodesk deliveries as events of the mirror's live asset, each delivery id once.

The asset event is the only record: its extra carries the delivery id, so the dedupe is as
durable and as shared as Airflow's metadata database, across every API-server worker and
replica, with no table of our own. Two workers handed the same delivery at once are
serialized by a row lock on the asset (`FOR NO KEY UPDATE`; SQLite's single writer lock):
the second one reads the first one's committed event and refuses.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aps_mirror.airflow_provider.assets import live_asset_name

# Autodesk retries a failed delivery for 48 hours; a repeat older than this window is not
# looked for (it costs one more harmless sync), which keeps the lookup an index range scan.
DEDUPE_WINDOW = timedelta(days=3)


class NoLiveAsset(Exception):
    """No DAG declares the mirror's live asset (unknown mirror, or its live DAG not parsed)."""


class DuplicateDelivery(Exception):
    """This delivery id was already recorded."""


def record_delivery(mirror: str, extra: dict[str, Any], now: datetime) -> int:
    """Record `extra` (with its `delivery_id`) as one event of the mirror's live asset, queueing
    the DAGs scheduled on it like any asset event; returns the event id."""
    from sqlalchemy import select

    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetActive, AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        asset = session.scalar(
            select(AssetModel)
            .join(AssetActive, (AssetActive.name == AssetModel.name) & (AssetActive.uri == AssetModel.uri))
            .where(AssetModel.name == live_asset_name(mirror)))
        if asset is None:
            raise NoLiveAsset(mirror)
        _lock_asset(session, asset.id)
        seen = session.scalar(
            select(AssetEvent.id).where(
                AssetEvent.asset_id == asset.id,
                AssetEvent.timestamp >= now - DEDUPE_WINDOW,
                AssetEvent.extra["delivery_id"].as_string() == extra["delivery_id"]).limit(1))
        if seen is not None:
            raise DuplicateDelivery(extra["delivery_id"])
        event = asset_manager.register_asset_change(asset=asset, extra=extra, session=session)
        if event is None:  # removed between the lookup and the lock
            raise NoLiveAsset(mirror)
        return event.id


def _lock_asset(session: Any, asset_id: int) -> None:
    """Hold the asset's row until commit: deliveries for one mirror record one at a time."""
    from sqlalchemy import select, update

    from airflow.models.asset import AssetModel

    if session.get_bind().dialect.name == "sqlite":  # no row locks: take the database's writer lock
        session.execute(update(AssetModel).where(AssetModel.id == asset_id).values(id=AssetModel.id))
    else:  # NO KEY UPDATE: does not block the scheduler's KEY SHARE locks on the same row
        session.execute(select(AssetModel.id).where(AssetModel.id == asset_id).with_for_update(key_share=True))
