"""Entry point of the `aps-mirror` command."""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import logging
import sys
from contextlib import redirect_stdout
from typing import Any, Sequence

from aps_mirror import __version__
from aps_mirror.cli import authorize, catalog, report, restore, sync, tree, validate, verify, webhooks
from aps_mirror.cli.common import ExitCode, apply_log_levels, setup_logging
from aps_mirror.errors import ApsMirrorError, ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aps-mirror",
                                     description="Mirror Autodesk cloud documents into S3.")
    parser.add_argument("--version", action="version", version=f"aps-mirror {__version__}")
    _add_output_options(parser, defaults=True)
    # The same options after the command name too (`aps-mirror sync -v`), without overriding.
    common = argparse.ArgumentParser(add_help=False)
    _add_output_options(common, defaults=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, parents=[common])

    sync.configure_parser(command("sync", "mirror the selected projects once"))
    validate.configure_parser(command("validate", "check what the connection can do"))
    tree.configure_parser(command("tree", "show the mirror in S3 as a tree"))
    authorize.configure_parser(command("authorize", "connect an Autodesk account to a connection"))
    report.configure_parser(command("report", "summarize the mirror's health from its catalog"))
    catalog.configure_parser(command("catalog", "publish or download the mirror's catalog (Parquet)"))
    verify.configure_parser(command("verify", "prove the mirror: every object present and intact, "
                                              "no orphans or stale uploads; optionally against Autodesk"))
    restore.configure_parser(command("restore", "copy files from the mirror back into Autodesk Docs, "
                                                "as of the latest state or a point in time"))
    webhooks.configure_parser(command("webhooks", "create, repair, list or delete the mirror's Autodesk "
                                                  "webhooks (live mirror)"), common)
    from aps_mirror.simulator import cli as simulator_cli

    simulator_cli.configure_parser(command("simulator", "run the APS simulator"))
    return parser


def _add_output_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    parser.add_argument("-v", "--verbose", action="count",
                        default=0 if defaults else argparse.SUPPRESS, help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true",
                        default=False if defaults else argparse.SUPPRESS,
                        help="warnings and errors only")


class _AirflowLogsToStderr(importlib.abc.MetaPathFinder):
    """Imports `airflow` (when a connection lookup needs it) with stdout pointed at stderr.

    Importing Airflow configures logging onto whatever `sys.stdout` is at that moment (and may
    print); the CLI's stdout must carry only its own output, e.g. the `--json` summary.
    """

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: Any = None) -> Any:
        if fullname != "airflow":
            return None
        sys.meta_path.remove(self)  # once is enough, and the search below must not find us
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            previous = logging.root.manager.disable
            logging.disable(max(previous, logging.INFO))  # "Reading the config from ..." is noise here
            try:
                with redirect_stdout(sys.stderr):
                    load(module)
                    _structlog_to_stderr()
                apply_log_levels()  # Airflow's logging setup reset the -v / -q / quiet-library levels
            finally:
                logging.disable(previous)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _structlog_to_stderr() -> None:
    """Airflow's structlog loggers pick `sys.stdout` when first used; give them stderr."""
    try:
        import structlog
    except ImportError:
        return
    structlog.configure(logger_factory=structlog.WriteLoggerFactory(file=sys.stderr))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    if "airflow" not in sys.modules and not any(isinstance(f, _AirflowLogsToStderr) for f in sys.meta_path):
        sys.meta_path.insert(0, _AirflowLogsToStderr())
    try:
        return int(args.func(args))
    except ApsMirrorError as exc:
        # Printed, not logged: importing Airflow may have re-routed logging.
        print(f"aps-mirror: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE if isinstance(exc, ConfigError) else ExitCode.FAILED
    except KeyboardInterrupt:
        print("aps-mirror: interrupted; the mirror and its manifests are consistent, "
              "run again to finish", file=sys.stderr)
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
