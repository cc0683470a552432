"""`aps-mirror sync`: mirror every selected project once."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import nullcontext

from aps_mirror.catalog.writer import CatalogWriter
from aps_mirror.cli.common import ExitCode, aps_client, open_bucket
from aps_mirror.connection import DEFAULT_AWS_CONN_ID, DEFAULT_CONN_ID
from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine, ProjectResult, RunSummary
from aps_mirror.mirror.plan import DeleteLimit, DeletePolicy

log = logging.getLogger(__name__)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conn-id", default=DEFAULT_CONN_ID, help="Autodesk connection id (default: %(default)s)")
    parser.add_argument("--aws-conn-id", default=DEFAULT_AWS_CONN_ID, help="AWS connection id (default: %(default)s)")
    parser.add_argument("--bucket", required=True, help="S3 bucket of the mirror (must exist)")
    parser.add_argument("--prefix", default="autodesk", help="key prefix of the mirror (default: %(default)s)")
    parser.add_argument("--hub", action="append", default=[], metavar="GLOB",
                        help="only hubs whose name or id matches (repeatable; ids with or without 'b.')")
    parser.add_argument("--exclude-hub", action="append", default=[], metavar="GLOB",
                        help="never hubs whose name or id matches (repeatable; wins over --hub)")
    parser.add_argument("--project", action="append", default=[], metavar="GLOB",
                        help="only projects whose name or id matches (repeatable; ids with or without 'b.')")
    parser.add_argument("--exclude-project", action="append", default=[], metavar="GLOB",
                        help="never projects whose name or id matches (repeatable; wins over --project)")
    parser.add_argument("--top-folder", action="append", default=[], metavar="GLOB",
                        help="only top folders whose name matches, e.g. 'Plans' or '*' for all "
                             "(repeatable; default: 'Project Files' in ACC and BIM 360 hubs, every "
                             "top folder in Fusion/A360 hubs; ACC system folders only when named)")
    parser.add_argument("--extension", action="append", default=[], metavar="EXT",
                        help="only files with this extension, e.g. rvt (repeatable)")
    parser.add_argument("--exclude-extension", action="append", default=[], metavar="EXT",
                        help="never files with this extension (repeatable)")
    parser.add_argument("--max-file-size", type=parse_size, default=None, metavar="SIZE",
                        help="skip files larger than this (bytes, or with K, M, G, T)")
    parser.add_argument("--workers", type=int, default=4, help="parallel transfers per project")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    parser.add_argument("--full-walk", action="store_true",
                        help="list every folder, whatever the rollups say (catches what they miss)")
    parser.add_argument("--full-walk-days", type=float, default=7.0,
                        help="list every folder when the last full walk is older (default: %(default)s)")
    parser.add_argument("--delete-policy", choices=[p.value for p in DeletePolicy], default="keep",
                        help="what to do with files deleted in Autodesk (default: %(default)s: "
                             "keep them, marked deleted in the manifest)")
    parser.add_argument("--max-delete", default="10%",
                        help="refuse to delete more than this many files, or this percentage of a "
                             "project's files (default: %(default)s)")
    parser.add_argument("--versions", choices=["tip", "all"], default="tip",
                        help="tip: the latest version of each file (default); all: also every "
                             "earlier version, under <project>/_versions/")
    parser.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    parser.add_argument("--no-progress", action="store_true",
                        help="log progress lines instead of drawing progress bars (bars are drawn "
                             "only when stderr is a terminal, and never with --json or -q)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    client = aps_client(args.conn_id)
    s3 = open_bucket(args.aws_conn_id, args.bucket)
    config = MirrorConfig(bucket=args.bucket, prefix=args.prefix, dry_run=args.dry_run,
                          project_filter=tuple(args.project), exclude_projects=tuple(args.exclude_project),
                          hub_filter=tuple(args.hub), exclude_hubs=tuple(args.exclude_hub),
                          workers=args.workers,
                          full_walk=args.full_walk, full_walk_days=args.full_walk_days,
                          delete_policy=DeletePolicy(args.delete_policy),
                          max_delete=DeleteLimit.parse(args.max_delete),
                          top_folders=tuple(args.top_folder), extensions=tuple(args.extension),
                          exclude_extensions=tuple(args.exclude_extension),
                          max_file_size=args.max_file_size, versions=args.versions)
    catalog = None if args.dry_run else CatalogWriter(s3, args.bucket, args.prefix)
    with _progress_display(args) as bars:
        engine = MirrorEngine(client, s3, config, progress_listeners=[bars] if bars else (),
                              catalog=catalog, trigger="cli")
        listing_calls = dict(client.transport.counter.snapshot())
        projects = engine.list_projects()
        listing_calls = _delta(client.transport.counter.snapshot(), listing_calls)
        log.info("%d project(s) selected", len(projects))
        results: list[ProjectResult] = []
        for project in projects:
            try:
                results.append(engine.sync_project(project))
            except Exception as exc:  # a failed project must not stop the others
                log.error("project %s failed: %s", project.label, exc)
                results.append(ProjectResult(project=project.label, hub_id=project.hub_id,
                                             project_id=project.project_id, dry_run=args.dry_run,
                                             listing_complete=False, errors=[str(exc)]))
        if not any(r.errors for r in results):  # a failed run proves nothing about what is gone
            results += engine.retire_missing_projects(projects)
    summary = RunSummary.combine(results, extra_api_calls=listing_calls)
    catalog_rows = _publish_catalog(catalog) if catalog is not None else None
    if args.json:
        json.dump({**summary.to_dict(), "catalog": catalog_rows}, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        if args.dry_run:
            for step in summary.planned:
                print(f"{step['action']:<12} {step['size']:>12}  {step['key']}  ({step['reason']})")
        print(summary.format_text())
    return ExitCode.FAILED if summary.errors or summary.files_failed else ExitCode.OK


def _publish_catalog(catalog: CatalogWriter) -> dict[str, int] | None:
    """Fold this run into the catalog and rebuild its snapshot; the mirror is done either way."""
    try:
        rows = catalog.publish_snapshot()
    except Exception as exc:
        log.warning("the mirror is complete, but the catalog could not be published (%s); "
                    "run `aps-mirror catalog publish` to retry", exc)
        return None
    log.info("catalog published: %s", ", ".join(f"{n} {table}" for table, n in rows.items()))
    return rows


def _progress_display(args: argparse.Namespace):
    """Rich progress bars on a terminal; elsewhere (pipes, Airflow, --json, -q) the log lines."""
    if args.json or args.no_progress or getattr(args, "quiet", False) or args.dry_run:
        return nullcontext(None)
    from aps_mirror.cli.progress_bar import progress_bars, wants_progress_bars

    return progress_bars() if wants_progress_bars() else nullcontext(None)


def parse_size(text: str) -> int:
    """`5G`, `200M`, `1024`: a size in bytes (binary multiples)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    value = text.strip().upper().removesuffix("B")
    try:
        if value and value[-1] in units:
            return int(float(value[:-1]) * units[value[-1]])
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 5G, 200M or 1024") from None


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
