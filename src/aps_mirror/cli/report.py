"""`aps-mirror report`: the dashboard's summary in a terminal (rich), a pipe (text) or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from aps_mirror.cli.catalog import add_location_options, mirror_location, open_bucket
from aps_mirror.cli.common import ExitCode

STATUS_STYLE = {"ok": "green", "stale": "yellow", "failing": "bold red", "never": "dim"}
VERIFICATION_STYLE = {"verified": "green", "unverified": "yellow", "faults": "bold red"}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_location_options(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--days", type=int, default=30, help="nights and failures of the last N days "
                                                              "(default: %(default)s)")
    parser.add_argument("--stale-after-hours", type=float, default=36.0,
                        help="a project with no successful run for this long is stale (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aps_mirror.catalog.report import build_report  # DuckDB and pyarrow load only here

    bucket, prefix = mirror_location(args)
    report = build_report(open_bucket(args.aws_conn_id, bucket), bucket, prefix,
                          stale_after_hours=args.stale_after_hours, days=args.days,
                          aws_conn_id=args.aws_conn_id)
    if not report.projects:
        print(f"aps-mirror: the catalog of s3://{bucket}/{prefix} is empty: run "
              "`aps-mirror sync` (or `aps-mirror catalog publish` after a sync)", file=sys.stderr)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif sys.stdout.isatty():
        print_rich(report)
    else:
        print(report.format_text())
    return ExitCode.OK


def print_rich(report: Any, console: Any = None) -> None:
    """The same tables as format_text, with rich's borders and colours."""
    from rich.console import Console
    from rich.table import Table

    from aps_mirror.catalog.report import failure_rows, night_rows, project_rows, verification_lines
    from aps_mirror.mirror.progress import human_bytes

    console = console or Console()
    t = report.totals
    console.print(f"[bold]s3://{report.bucket}/{report.prefix.strip('/')}[/] at {report.generated_at}: "
                  f"{t['hubs']} hub(s), {t['projects']} project(s), {t['files']:,} files "
                  f"({human_bytes(t['bytes'])}), {t['unavailable']:,} not mirrored, "
                  f"[{'bold red' if t['failing_projects'] else 'green'}]{t['failing_projects']} failing[/]")
    if report.verification:  # plain text: a path or an error is no rich markup
        first, *rest = verification_lines(report.verification)
        console.print(first, style=VERIFICATION_STYLE.get(report.verification.status), markup=False,
                      highlight=False)
        for line in rest:
            console.print(line, markup=False, highlight=False)
    for title, (headers, rows) in (("Projects", project_rows(report.projects)),
                                   ("Nights", night_rows(report.nights)),
                                   ("Failures", failure_rows(report.failures))):
        table = Table(title=title, title_justify="left")
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in rows:
            if title == "Projects":  # colour the status cell
                row = [*row[:2], f"[{STATUS_STYLE.get(row[2], '')}]{row[2]}[/]", *row[3:]]
            table.add_row(*row)
        console.print(table)
