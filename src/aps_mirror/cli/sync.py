"""`aps-mirror sync`: mirror every selected project once."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import nullcontext

from aps_mirror.catalog.writer import CatalogWriter
from aps_mirror.cli.common import ExitCode, aps_client, open_bucket, vault_client
from aps_mirror.connection import DEFAULT_AWS_CONN_ID, DEFAULT_CONN_ID
from aps_mirror.mirror.engine import MirrorEngine, RunSummary
from aps_mirror.mirror.sources.chosen import run_sources
from aps_mirror.options import add_cli_arguments, mirror_config

log = logging.getLogger(__name__)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conn-id", default=DEFAULT_CONN_ID, help="Autodesk connection id (default: %(default)s)")
    parser.add_argument("--aws-conn-id", default=DEFAULT_AWS_CONN_ID,
                        help="AWS connection id (default: %(default)s; only the default may be absent, "
                             "then boto3's own credentials are used)")
    add_cli_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    parser.add_argument("--no-progress", action="store_true",
                        help="log progress lines instead of drawing progress bars (bars are drawn "
                             "only when stderr is a terminal, and never with --json or -q)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = mirror_config(vars(args), cli=True)  # a bad option is refused before any connection
    client = aps_client(args.conn_id)
    vault = vault_client(args.conn_id, client)
    sources = run_sources(config, client, vault, args.conn_id)
    s3 = open_bucket(args.aws_conn_id, config.bucket, workers=config.transfers)
    catalog = None if config.dry_run else CatalogWriter(s3, config.bucket, config.prefix)
    counters = [client.transport.counter] + ([vault.transport.counter] if vault is not None else [])
    with _progress_display(args) as bars:
        engine = MirrorEngine(sources, s3, config, progress_listeners=[bars] if bars else (),
                              catalog=catalog, trigger="cli")
        with engine.locked(config.lock_wait_seconds, break_lock=config.break_lock):
            listing_calls = _calls(counters)
            projects = engine.list_projects()
            listing_calls = _delta(_calls(counters), listing_calls)
            log.info("%d project(s) selected", len(projects))
            results = engine.mirror_projects(projects)
            results += engine.retire_missing_projects(projects, results)
    summary = RunSummary.combine(results, extra_api_calls=listing_calls)
    catalog_rows = _publish_catalog(catalog, summary) if catalog is not None else None
    if args.json:
        json.dump({**summary.to_dict(), "catalog": catalog_rows}, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        if config.dry_run:
            for step in summary.planned:
                print(f"{step['action']:<12} {step['size']:>12}  {step['key']}  ({step['reason']})")
        print(summary.format_text())
    return ExitCode.FAILED if summary.errors or summary.files_failed else ExitCode.OK


def _publish_catalog(catalog: CatalogWriter, summary: RunSummary) -> dict[str, int] | None:
    """Fold this run into the catalog and rebuild its snapshot; the mirror's outcome stands either way."""
    try:
        rows = catalog.publish_snapshot()
    except Exception as exc:
        mirror = (f"{summary.projects_failed} of {summary.projects} project(s) failed (see above)"
                  if summary.projects_failed else "the mirror is complete")
        log.warning("%s, and the catalog could not be published (%s); run `aps-mirror catalog "
                    "publish` to retry", mirror, exc)
        return None
    log.info("catalog published: %s", ", ".join(f"{n} {table}" for table, n in rows.items()))
    return rows


def _progress_display(args: argparse.Namespace):
    """Rich progress bars on a terminal; elsewhere (pipes, Airflow, --json, -q) the log lines."""
    if args.json or args.no_progress or getattr(args, "quiet", False) or args.dry_run:
        return nullcontext(None)
    from aps_mirror.cli.progress_bar import progress_bars, wants_progress_bars

    return progress_bars() if wants_progress_bars() else nullcontext(None)


def _calls(counters: list) -> dict[str, int]:
    """Requests sent so far by endpoint class, APS and Vault together (their classes differ)."""
    total: dict[str, int] = {}
    for counter in counters:
        for name, count in counter.snapshot().items():
            total[name] = total.get(name, 0) + count
    return total


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
